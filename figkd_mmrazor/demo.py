"""A small synthetic fine-grained "bird" dataset in the CUB-200-2011 layout.

A public API in the manner of ``sklearn.datasets.make_*``: the embedded demo
(``make demo``), the test suite and a user who wants to try a recipe without
downloading a dataset all draw their data with::

    from figkd_mmrazor.demo import make_demo_cub
    root = make_demo_cub('data/demo_cub')        # 50 classes, 32 px
    root = make_demo_cub('data/tiny', families=2, species_per_family=2,
                         train_per_class=4, test_per_class=2)

Each class is a species, and species are grouped into families. The dataset is
written so that ``mmpretrain.datasets.CUB`` loads it unchanged::

    ROOT/
      images/001.Family0_Species0/Family0_Species0_0000.png ...
      images.txt              "<image_id> <class_dir>/<file>"    (1-based ids)
      image_class_labels.txt  "<image_id> <class_id>"            (1-based ids)
      train_test_split.txt    "<image_id> <1 = train, 0 = test>"
      classes.txt             "<class_id> <class_dir>"
      class_families.txt      "<class_id> <family_id>"  (extra, 1-based)
      demo_spec.json          the generation parameters (see below)

Classes are ordered along the hierarchy, as CUB orders them taxonomically:
all species of family 0, then all species of family 1, and so on. mmpretrain's
``CUB`` carries the 200 real bird names as its default class names, so pass
``classes=spec.class_names()`` to get the right ones.

What makes two classes differ
-----------------------------
* Family features (coarse, shared by all species of a family): the base colour
  of body and head (families are spread evenly around the hue circle), belly
  and beak colour, body length and height, head size, and the tail's length,
  spread and whether it is forked.
* Species features (fine, small parts only): the colour of a crown patch on
  the head, the wing pattern (plain, one bar, two bars, spots), beak length,
  a pale eye ring, and a coloured tail tip. Within a family, species are a
  random walk in that trait space: each differs from the previous species in
  one or two traits, so neighbouring classes are the hardest pairs. The same
  traits recur in every family, so the details alone do not give the family.
* Nuisance (per image, scaled by ``difficulty``): facing left or right,
  rotation, position and scale of the bird, colour and brightness jitter, a
  textured background with random leaves (some in bird-like colours), a perch,
  leaves that may hide a detail, and pixel noise.

At 32 px a species detail covers a handful of pixels, so a tiny CNN trained for
a few epochs lands well above chance but far from perfect, while the family is
easy; that gap is what a bigger teacher can pass on by distillation.

Size and difficulty
-------------------
``DemoSpec`` holds every parameter: ``families`` x ``species_per_family``
classes (default 10 x 5 = 50), ``train_per_class`` and ``test_per_class``
images (default 30 + 10, so 2000 images), ``size`` (image side, default 32)
and ``seed``. ``difficulty`` scales all nuisance variation: 0 draws every
image of a class identically (a field guide of the classes), 1 is the
default, larger values make the task harder. Fewer species per family, a
larger ``size`` or more training images make it easier.

Everything is a pure function of the spec: each image draws from its own
``numpy`` generator seeded by ``(seed, class, index)``, and PNG files carry no
timestamps, so equal specs give byte-identical files in any generation order.
`make_demo_cub` skips work when ``ROOT`` already holds the dataset of
the same spec, and refuses to touch a directory that holds anything else.

Command line::

    python -m figkd_mmrazor.demo OUT_DIR [--seed 0] [--families 10]
        [--species-per-family 5] [--train-per-class 30] [--test-per-class 10]
        [--size 32] [--difficulty 1.0]
"""
import argparse
import colorsys
import dataclasses
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

__all__ = ['DemoSpec', 'DatasetMismatchError', 'make_demo_cub', 'render_image']

# Bump whenever the drawing changes, so a dataset drawn by an older generator
# is reported as different instead of being silently reused.
GENERATOR_VERSION = 1
SPEC_FILE = 'demo_spec.json'

# Drawing happens at this multiple of the output size and is box-filtered
# down, which anti-aliases the 1-2 pixel details that separate species.
SUPERSAMPLE = 4

# Independent random streams, so adding draws to one never shifts another.
_FAMILY_STREAM, _SPECIES_STREAM, _IMAGE_STREAM = 1, 2, 3

# Well under the size of the trait space, even with the mark colours a family
# cannot show removed (see _allowed_options).
MAX_SPECIES_PER_FAMILY = 50

RGB = Tuple[float, float, float]
MARK_COLOURS: Dict[str, RGB] = {
    'red': (0.85, 0.10, 0.10),
    'yellow': (0.95, 0.85, 0.10),
    'white': (0.95, 0.95, 0.92),
    'black': (0.08, 0.08, 0.08),
    'blue': (0.15, 0.30, 0.90),
}
BEAK_COLOURS: Tuple[RGB, ...] = ((0.2, 0.2, 0.2), (0.95, 0.55, 0.1),
                                 (0.9, 0.85, 0.3), (0.8, 0.75, 0.65))

# The species trait space: each trait and its options. None means "no mark".
SPECIES_TRAITS: Dict[str, tuple] = {
    'crown': (None, 'red', 'yellow', 'white', 'black', 'blue'),
    'wing': ('plain', 'bar', 'double_bar', 'spots'),
    'beak': ('short', 'long'),
    'eye_ring': (False, True),
    'tail_tip': (None, 'white', 'black'),
}


@dataclasses.dataclass(frozen=True)
class FamilyLook:
    """Coarse appearance shared by every species of a family.

    Lengths are in bird units: the unscaled bird spans about 1.5 of them and
    the image spans 2.
    """
    body: RGB
    belly: RGB
    wing: RGB
    beak: RGB
    body_length: float  # semi-axis along the body
    body_height: float  # semi-axis across the body
    head_radius: float
    tail_length: float
    tail_spread: float
    tail_forked: bool


@dataclasses.dataclass(frozen=True)
class DemoSpec:
    """Every parameter of a demo dataset; equal specs give equal files.

    Classes are ``families * species_per_family``; each has
    ``train_per_class + test_per_class`` images of ``size`` x ``size`` px.
    ``seed`` fixes the family looks, the species traits and every image;
    ``difficulty`` scales the nuisance variation (0: none, 1: default).
    """
    families: int = 10
    species_per_family: int = 5
    train_per_class: int = 30
    test_per_class: int = 10
    size: int = 32
    seed: int = 0
    difficulty: float = 1.0

    def __post_init__(self):
        for name in ('families', 'species_per_family', 'train_per_class'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1')
        if self.test_per_class < 0 or self.seed < 0 or self.difficulty < 0:
            raise ValueError(
                'test_per_class, seed and difficulty must be >= 0')
        if self.size < 16:
            raise ValueError('size must be >= 16: species details need pixels')
        if self.species_per_family > MAX_SPECIES_PER_FAMILY:
            raise ValueError(
                f'at most {MAX_SPECIES_PER_FAMILY} species per family')

    @property
    def num_classes(self) -> int:
        return self.families * self.species_per_family

    @property
    def images_per_class(self) -> int:
        return self.train_per_class + self.test_per_class

    @property
    def num_images(self) -> int:
        return self.num_classes * self.images_per_class

    def family_of(self, class_idx: int) -> int:
        """0-based family of a 0-based class index."""
        return class_idx // self.species_per_family

    def species_of(self, class_idx: int) -> int:
        """0-based species index of a class within its family."""
        return class_idx % self.species_per_family

    def class_names(self) -> List[str]:
        """CUB-style class directory names, in class-index order."""
        width = max(3, len(str(self.num_classes)))
        return [
            f'{c + 1:0{width}d}.{self._short_name(c)}'
            for c in range(self.num_classes)
        ]

    def _short_name(self, class_idx: int) -> str:
        return (f'Family{self.family_of(class_idx)}_'
                f'Species{self.species_of(class_idx)}')

    def family_look(self, family: int) -> FamilyLook:
        return _family_looks(self)[family]

    def species_traits(self, class_idx: int) -> Dict[str, object]:
        """The fine traits (see ``SPECIES_TRAITS``) that define a class."""
        return dict(_species_traits(self)[class_idx])

    def to_json(self) -> str:
        fields = dict(dataclasses.asdict(self),
                      generator_version=GENERATOR_VERSION)
        return json.dumps(fields, indent=2, sort_keys=True) + '\n'

    @classmethod
    def from_dir(cls, root) -> 'DemoSpec':
        """The spec a dataset directory was generated with."""
        fields = json.loads((Path(root) / SPEC_FILE).read_text())
        fields.pop('generator_version', None)
        return cls(**fields)


# --------------------------------------------------------------------------
# Taxonomy: the family looks and species traits, fixed by the seed.


def _hsv(h: float, s: float, v: float) -> RGB:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


@functools.lru_cache(maxsize=8)
def _family_looks(spec: DemoSpec) -> Tuple[FamilyLook, ...]:
    hue_offset = np.random.default_rng([spec.seed, _FAMILY_STREAM]).random()
    looks = []
    for family in range(spec.families):
        rng = np.random.default_rng([spec.seed, _FAMILY_STREAM, family])
        # Even hue spacing keeps families apart in colour; shape separates
        # the families whose hues end up close when there are many.
        hue = hue_offset + family / spec.families
        sat, val = rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.85)
        looks.append(
            FamilyLook(
                body=_hsv(hue, sat, val),
                belly=_hsv(hue + rng.uniform(-0.05, 0.05),
                           sat * rng.uniform(0.15, 0.5),
                           rng.uniform(0.8, 0.95)),
                # A darker wing keeps pale wing bars and spots visible.
                wing=_hsv(hue, sat, val * 0.6),
                beak=BEAK_COLOURS[rng.integers(len(BEAK_COLOURS))],
                body_length=float(rng.uniform(0.36, 0.5)),
                body_height=float(rng.uniform(0.2, 0.3)),
                head_radius=float(rng.uniform(0.15, 0.2)),
                tail_length=float(rng.uniform(0.15, 0.4)),
                tail_spread=float(rng.uniform(0.0, 0.2)),
                tail_forked=bool(rng.random() < 0.4),
            ))
    return tuple(looks)


def _allowed_options(look: FamilyLook) -> Dict[str, tuple]:
    """Trait options, minus mark colours too close to the body to see."""

    def visible(colour):
        return colour is None or np.abs(
            np.subtract(MARK_COLOURS[colour], look.body)).sum() > 0.45

    return {
        trait: tuple(o for o in options
                     if trait not in ('crown', 'tail_tip') or visible(o))
        for trait, options in SPECIES_TRAITS.items()
    }


@functools.lru_cache(maxsize=8)
def _species_traits(spec: DemoSpec) -> Tuple[Tuple[tuple, ...], ...]:
    classes = []
    for family, look in enumerate(_family_looks(spec)):
        rng = np.random.default_rng([spec.seed, _SPECIES_STREAM, family])
        options = _allowed_options(look)
        names = list(options)
        current = {t: options[t][rng.integers(len(options[t]))] for t in names}
        seen = [tuple(current.items())]
        while len(seen) < spec.species_per_family:
            # Relatives differ in one or two traits: a random walk in trait
            # space. On a repeat the walk goes on from a random earlier
            # species, which always has an unseen neighbour somewhere.
            candidate = dict(current)
            for trait in rng.choice(names, size=rng.integers(1, 3),
                                    replace=False):
                others = [o for o in options[trait] if o != candidate[trait]]
                candidate[trait] = others[rng.integers(len(others))]
            key = tuple(candidate.items())
            if key in seen:
                current = dict(seen[rng.integers(len(seen))])
            else:
                seen.append(key)
                current = candidate
        classes.extend(seen)
    return tuple(classes)


# --------------------------------------------------------------------------
# Drawing. Coordinates span [-1, 1] with y pointing down; masks are boolean
# arrays over the supersampled grid.


@functools.lru_cache(maxsize=4)
def _grid(n: int) -> Tuple[np.ndarray, np.ndarray]:
    c = ((np.arange(n) + 0.5) / n * 2 - 1).astype(np.float32)
    return np.meshgrid(c, c)


def _window(n: int, cx: float, cy: float, reach: float):
    """Index slices of the n x n grid covering a square around (cx, cy).

    Shapes are evaluated on such a window only: most of them are small.
    """

    def index(c):
        return int(np.clip(np.floor((c + 1) / 2 * n), 0, n))

    return (slice(index(cy - reach), index(cy + reach) + 1),
            slice(index(cx - reach), index(cx + reach) + 1))


def _ellipse(x, y, cx, cy, rx, ry, angle=0.0):
    # Python floats keep the arithmetic in the grid's float32.
    cx, cy, rx, ry, angle = map(float, (cx, cy, rx, ry, angle))
    window = _window(x.shape[0], cx, cy, max(rx, ry))
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x[window] - cx, y[window] - cy
    mask = np.zeros(x.shape, bool)
    mask[window] = (((dx * cos + dy * sin) / rx)**2 +
                    ((-dx * sin + dy * cos) / ry)**2) <= 1
    return mask


def _background(rng, x, y, difficulty: float, size: int) -> np.ndarray:
    n = x.shape[0]
    if difficulty == 0:
        return np.full((n, n, 3), 0.6, np.float32)
    # Low-frequency coloured gratings give texture without any structure a
    # network could mistake for a small bird part. Being smooth, they are
    # computed at the output size and upsampled, which is much cheaper.
    coarse_x, coarse_y = _grid(size)
    texture = np.zeros((size, size, 3), np.float32)
    texture += _hsv(rng.random(), rng.uniform(0.1, 0.5),
                    rng.uniform(0.35, 0.85))
    for _ in range(3):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(1, 5)
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * np.pi *
                      (coarse_x * np.cos(angle) + coarse_y * np.sin(angle)) +
                      phase)
        tint = rng.uniform(-1, 1, 3) * 0.1 * difficulty
        texture += wave[..., None] * tint.astype(np.float32)
    canvas = texture.repeat(n // size, axis=0).repeat(n // size, axis=1)
    # Leaves of any colour, so colour alone does not find the bird.
    for _ in range(rng.poisson(4 * difficulty)):
        _paint_leaf(canvas, rng, x, y, rng.uniform(0.06, 0.3))
    return canvas


def _paint_leaf(canvas, rng, x, y, radius):
    mask = _ellipse(x, y, *rng.uniform(-1, 1, 2), radius,
                    radius * rng.uniform(0.3, 0.8), rng.uniform(0, np.pi))
    canvas[mask] = _hsv(rng.random(), rng.uniform(0.2, 0.9),
                        rng.uniform(0.2, 0.9))


def _bird_radius(look: FamilyLook) -> float:
    """Farthest reach of any part drawn by `_draw_bird`, plus a margin."""
    a, b, r = look.body_length, look.body_height, look.head_radius
    tail_corner = math.hypot(a + look.tail_length,
                             0.35 * b + look.tail_spread)
    head = math.hypot(0.92 * a, 0.75 * b) + r
    long_beak_tip = math.hypot(0.92 * a + 2.5 * r, 0.75 * b)
    return max(a, tail_corner, head, long_beak_tip) + 0.05


def _draw_bird(canvas, u, v, look: FamilyLook, traits, gain):
    """Paint the bird given each pixel's bird-frame coordinates.

    ``u`` runs from tail to beak and ``v`` from back to belly, both in bird
    units; ``gain`` is the per-image colour jitter of the whole bird.
    """

    def paint(mask, colour):
        canvas[mask] = np.clip(np.multiply(colour, gain), 0, 1)

    a, b, r = look.body_length, look.body_height, look.head_radius

    # Tail: a wedge behind the body, widening by the family's spread.
    tail_root, tail_end = -0.6 * a, -a - look.tail_length
    t = (tail_root - u) / (tail_root - tail_end)  # 0 at root, 1 at end
    half_width = 0.35 * b + look.tail_spread * t
    tail = (t >= 0) & (t <= 1) & (np.abs(v) <= half_width)
    if look.tail_forked:
        tail &= ~((t > 0.55) & (np.abs(v) < (t - 0.55) * half_width * 1.8))
    paint(tail, look.body)
    if traits['tail_tip'] is not None:
        paint(tail & (t > 0.75), MARK_COLOURS[traits['tail_tip']])

    body = (u / a)**2 + (v / b)**2 <= 1
    paint(body, look.body)
    paint(body & (v > 0.2 * b), look.belly)

    wing_u, wing_v, wing_a, wing_b = -0.15 * a, -0.2 * b, 0.62 * a, 0.5 * b
    wing = ((u - wing_u) / wing_a)**2 + ((v - wing_v) / wing_b)**2 <= 1
    paint(wing, look.wing)
    pale = MARK_COLOURS['white']
    bar_half = 0.055
    if traits['wing'] == 'bar':
        paint(wing & (np.abs(u - wing_u) < bar_half), pale)
    elif traits['wing'] == 'double_bar':
        for offset in (-0.3 * wing_a, 0.3 * wing_a):
            paint(wing & (np.abs(u - wing_u - offset) < bar_half), pale)
    elif traits['wing'] == 'spots':
        period, spot = 0.18, 0.06
        du = np.mod(u - wing_u, period) - period / 2
        dv = np.mod(v - wing_v, period) - period / 2
        paint(wing & (du**2 + dv**2 < spot**2), pale)

    head_u, head_v = 0.92 * a, -0.75 * b
    head = (u - head_u)**2 + (v - head_v)**2 <= r**2
    paint(head, look.body)
    if traits['crown'] is not None:
        paint(head & (v < head_v - 0.3 * r), MARK_COLOURS[traits['crown']])

    # Beak: a triangle from inside the head to a tip, short or long.
    beak_root = head_u + 0.8 * r
    beak_tip = head_u + r + (0.35 if traits['beak'] == 'short' else 1.5) * r
    s = (u - beak_root) / (beak_tip - beak_root)  # 0 at root, 1 at tip
    beak = ((s >= 0) & (s <= 1) &
            (np.abs(v - head_v - 0.15 * r) <= 0.45 * r * (1 - s)))
    paint(beak, look.beak)

    eye_u, eye_v = head_u + 0.35 * r, head_v - 0.1 * r
    eye_dist2 = (u - eye_u)**2 + (v - eye_v)**2
    if traits['eye_ring']:
        paint(eye_dist2 <= (0.55 * r)**2, pale)
    paint(eye_dist2 <= (0.25 * r)**2, MARK_COLOURS['black'])


def render_image(spec: DemoSpec, class_idx: int, index: int) -> np.ndarray:
    """Image ``index`` of class ``class_idx`` as a (size, size, 3) uint8 array.

    A pure function of its arguments: the random draws come from a generator
    seeded by ``(spec.seed, class_idx, index)`` alone.
    """
    rng = np.random.default_rng([spec.seed, _IMAGE_STREAM, class_idx, index])
    d = spec.difficulty
    look = spec.family_look(spec.family_of(class_idx))
    traits = spec.species_traits(class_idx)
    x, y = _grid(spec.size * SUPERSAMPLE)

    canvas = _background(rng, x, y, d, spec.size)

    # Pose: where the bird sits, how big, which way it faces and leans.
    # Python floats keep the pixel arithmetic in float32.
    scale = 0.9 * math.exp(rng.uniform(-0.2, 0.2) * d)
    centre_x, centre_y = (float(c) for c in rng.uniform(-0.2, 0.2, 2) * d)
    angle = float(rng.uniform(-0.6, 0.6) * d)
    facing = -1.0 if d > 0 and rng.random() < 0.5 else 1.0

    if d > 0:  # a perch just under the bird, behind it
        perch_angle = float(rng.uniform(-0.4, 0.4))
        perch_y = centre_y + scale * look.body_height * 1.1
        dist = ((y - perch_y) * math.cos(perch_angle) -
                (x - centre_x) * math.sin(perch_angle))
        canvas[np.abs(dist) < rng.uniform(0.03, 0.06)] = _hsv(
            rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6),
            rng.uniform(0.25, 0.5))

    window = _window(x.shape[0], centre_x, centre_y,
                     scale * _bird_radius(look))
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x[window] - centre_x, y[window] - centre_y
    u = facing * (dx * cos + dy * sin) / scale
    v = (-dx * sin + dy * cos) / scale
    gain = np.exp(rng.normal(0, 0.1 * d, 3))
    _draw_bird(canvas[window], u, v, look, traits, gain)

    # Leaves in front of the bird sometimes hide one of its details.
    for _ in range(rng.binomial(2, min(0.15 * d, 0.5))):
        _paint_leaf(canvas, rng, x, y, rng.uniform(0.05, 0.12))

    # Box-filter down; summing rows then columns is the fastest order.
    n, k = spec.size, SUPERSAMPLE
    image = canvas.reshape(n, k, n * k * 3).sum(axis=1)
    image = image.reshape(n, n, k, 3).sum(axis=2) / (k * k)
    # Lighting and sensor noise, applied to the whole picture.
    mean = image.mean()
    contrast = np.exp(rng.normal(0, 0.12 * d))
    brightness = np.exp(rng.normal(0, 0.12 * d))
    image = ((image - mean) * contrast + mean) * brightness
    image = image + rng.normal(0, 0.035 * d, image.shape)
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------
# Files.


class DatasetMismatchError(FileExistsError):
    """The target directory holds something other than the asked dataset."""


def _relative_image_paths(spec: DemoSpec) -> List[Tuple[int, int, str]]:
    """``(class_idx, index, 'class_dir/file.png')`` in image-id order."""
    rows = []
    for class_idx, class_dir in enumerate(spec.class_names()):
        short = spec._short_name(class_idx)
        for index in range(spec.images_per_class):
            path = f'{class_dir}/{short}_{index:04d}.png'
            rows.append((class_idx, index, path))
    return rows


def _is_complete(root: Path, spec: DemoSpec) -> bool:
    images_txt = root / 'images.txt'
    if not images_txt.is_file():
        return False
    listed = [line.split()[1] for line in images_txt.read_text().splitlines()]
    expected = [path for _, _, path in _relative_image_paths(spec)]
    return listed == expected and all(
        (root / 'images' / path).is_file() for path in expected)


def _check_existing(root: Path, spec: DemoSpec) -> bool:
    """True if ``root`` already holds this dataset, False if it is free.

    Raises :class:`DatasetMismatchError` for anything else, so that no user
    file is ever overwritten.
    """
    if not root.exists():
        return False
    if not root.is_dir():
        raise DatasetMismatchError(f'{root} exists and is not a directory')
    spec_file = root / SPEC_FILE
    if not spec_file.is_file():
        if any(root.iterdir()):
            raise DatasetMismatchError(
                f'{root} is not empty and has no {SPEC_FILE}: it is not a '
                'demo dataset. Choose another directory; nothing was written.')
        return False
    found = json.loads(spec_file.read_text())
    wanted = json.loads(spec.to_json())
    if found != wanted:
        diff = ', '.join(f'{k}: {found.get(k)!r} there, {wanted.get(k)!r} '
                         'requested' for k in sorted(set(found) | set(wanted))
                         if found.get(k) != wanted.get(k))
        raise DatasetMismatchError(
            f'{root} holds a demo dataset with other parameters ({diff}). '
            'Delete it or choose another directory; nothing was written.')
    if not _is_complete(root, spec):
        raise DatasetMismatchError(
            f'{root} holds this demo dataset, but files are missing or '
            'changed. Delete the directory to regenerate it.')
    return True


class _Progress:
    """A one-line text progress bar on stderr."""

    def __init__(self, total: int, enabled: bool, width: int = 30):
        self.total, self.enabled, self.width = total, enabled, width
        self.shown = -1

    def update(self, done: int):
        filled = done * self.width // self.total
        if not self.enabled or filled == self.shown:
            return
        self.shown = filled
        bar = '#' * filled + '.' * (self.width - filled)
        sys.stderr.write(f'\rdemo dataset [{bar}] {done}/{self.total}')
        if done == self.total:
            sys.stderr.write('\n')
        sys.stderr.flush()


def _write_text(path: Path, lines: Sequence[str]):
    path.write_text(''.join(f'{line}\n' for line in lines))


def _write_dataset(root: Path, spec: DemoSpec, progress: bool):
    rows = _relative_image_paths(spec)
    bar = _Progress(len(rows), progress)
    for class_dir in spec.class_names():
        (root / 'images' / class_dir).mkdir(parents=True)
    for done, (class_idx, index, path) in enumerate(rows, 1):
        Image.fromarray(render_image(spec, class_idx, index)).save(
            root / 'images' / path, format='PNG')
        bar.update(done)

    ids = range(1, len(rows) + 1)
    _write_text(root / 'images.txt',
                [f'{i} {path}' for i, (_, _, path) in zip(ids, rows)])
    _write_text(root / 'image_class_labels.txt',
                [f'{i} {c + 1}' for i, (c, _, _) in zip(ids, rows)])
    # CUB marks training images with 1; the first images of a class train.
    _write_text(root / 'train_test_split.txt', [
        f'{i} {int(index < spec.train_per_class)}'
        for i, (_, index, _) in zip(ids, rows)
    ])
    names = spec.class_names()
    _write_text(root / 'classes.txt',
                [f'{c + 1} {name}' for c, name in enumerate(names)])
    _write_text(root / 'class_families.txt', [
        f'{c + 1} {spec.family_of(c) + 1}' for c in range(spec.num_classes)
    ])
    # Written last: its presence marks a complete dataset.
    (root / SPEC_FILE).write_text(spec.to_json())


def make_demo_cub(root,
                  spec: Optional[DemoSpec] = None,
                  *,
                  progress: bool = True,
                  **params) -> Path:
    """Write the dataset of ``spec`` to ``root`` unless it is already there.

    ``params`` override fields of ``spec`` (or of the default spec), e.g.
    ``make_demo_cub('data/demo', families=3, size=48)``. The files are
    drawn in a sibling temporary directory and moved into place at the end,
    so an interrupted run leaves nothing half-written at ``root``.

    Returns ``root`` as a :class:`~pathlib.Path`. Raises
    :class:`DatasetMismatchError` if ``root`` exists and is neither empty nor
    this very dataset.
    """
    spec = dataclasses.replace(spec or DemoSpec(), **params)
    return write_atomically(Path(root),
                            lambda path: _check_existing(path, spec),
                            lambda path: _write_dataset(path, spec, progress))


def write_atomically(root: Path, is_there: Callable[[Path], bool],
                     write: Callable[[Path], None]) -> Path:
    """``write(staging)`` in a sibling temporary directory, then rename it
    to ``root``, unless ``is_there(root)`` already. ``is_there`` returns
    False for a free ``root`` and raises for one it must not touch."""
    if is_there(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{root.name}.', dir=root.parent))
    try:
        write(staging)
        if root.exists():
            root.rmdir()  # empty, as checked above
        os.rename(staging, root)
    except OSError:
        # Someone else may have finished the same dataset meanwhile.
        shutil.rmtree(staging, ignore_errors=True)
        if is_there(root):
            return root
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


def spec_parser(description: str, spec_cls) -> argparse.ArgumentParser:
    """A command line taking the dataset root, one ``--field-name`` option per
    field of the dataclass ``spec_cls`` (typed and defaulted by its default
    instance) and ``--quiet``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('out_dir', help='dataset root to create')
    defaults = spec_cls()
    for field in dataclasses.fields(spec_cls):
        parser.add_argument(f'--{field.name.replace("_", "-")}',
                            type=type(getattr(defaults, field.name)),
                            default=getattr(defaults, field.name),
                            help='default: %(default)s')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = spec_parser('Generate the synthetic fine-grained demo dataset '
                         '(CUB-200-2011 layout).', DemoSpec)
    args = vars(parser.parse_args(argv))
    out_dir, quiet = args.pop('out_dir'), args.pop('quiet')
    spec = DemoSpec(**args)
    root = make_demo_cub(out_dir, spec, progress=not quiet)
    print(f'{root}: {spec.num_classes} classes ({spec.families} families x '
          f'{spec.species_per_family} species), {spec.num_images} images of '
          f'{spec.size}x{spec.size} px')
    return root


if __name__ == '__main__':
    main()
