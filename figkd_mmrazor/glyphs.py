"""Glyphs: a fine-grained benchmark of real type designs, in the CUB layout.

Each class is one letter; classes that differ only in a small mark (A À Á Â
Ã Ä Å Ā Ă Ą) form a family, as a genus's species do in CUB-200-2011. The
images are those letters drawn from the typefaces that matplotlib installs
(DejaVu Sans, Sans Mono and Serif and STIX General, four styles each: 16
faces designed outside this project), with per-image variation of face,
size, position, rotation, stroke weight, blur, colours and noise::

    python -m figkd_mmrazor.glyphs data/glyphs            # the default
    python -m figkd_mmrazor.glyphs data/glyphs_shuffled --class-order shuffled

    from figkd_mmrazor.glyphs import GlyphSpec, make_glyphs
    root = make_glyphs('data/glyphs')

Layout (mmpretrain's ``CUB`` loads both roots unchanged)::

    ROOT/                       CUB(data_root=ROOT, split='train' | 'test')
      images/<class_dir>/{train,test}_<index>.png
      images.txt  image_class_labels.txt  train_test_split.txt  classes.txt
      class_names.txt           one name a line (mmpretrain's classes=<file>)
      class_families.txt        "<class_id> <family_id>" (extra, 1-based)
      validation/               CUB(data_root=ROOT/validation, split='test')
        images/<class_dir>/val_<index>.png  images.txt ...
      manifest.json             spec, generator version, font and file
                                checksums (written last)

The three splits are drawn independently (no image is in two of them), each
class has the same number of images in each split, and every image is a pure
function of (seed, split, class, index): the same spec gives the same files
on any machine with the same Pillow and fonts, and ``manifest.json`` holds a
checksum of all of them. Opening an existing root checks that its manifest
matches what this code would write and that every file still hashes to its
manifest entry; anything else raises :class:`DatasetMismatchError` and
touches nothing.

Class order. ``class_order='letter'`` (default) numbers the classes family by
family, so the variants of one letter are neighbours on the logit axis that
FiGKD's wavelets see. ``'shuffled'`` numbers the same classes (same images)
in a random order fixed by ``seed``: the control for what that axis is
worth.

Defaults. All 20 families (148 classes: the vowels, C, N, S, Z and Y in both
cases with their Latin-1 and Latin Extended-A variants), 40 / 20 / 30 train /
validation / test images a class at 32 px: 5,920 training images, so that an
epoch of a small CIFAR-style ResNet costs seconds on one CPU core and a
student trained on few images a class has much to learn from a teacher, and
4,440 test images, so that the test split's own sampling error (about 0.7
points at 50 %) stays below the differences between methods. The 16 faces
are the ones that draw every letter (matplotlib's Computer Modern and
display faces do not); a face is drawn per image, in every split, so the
benchmark asks for the letter, not for unseen designs.
"""
import dataclasses
import hashlib
import json
import os
import unicodedata
from multiprocessing import Pool
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .demo import (DatasetMismatchError, _Progress, _write_text,
                   spec_parser, write_atomically)

GENERATOR_VERSION = 2
MANIFEST = 'manifest.json'
CLASS_NAMES = 'class_names.txt'
# How often a neighbour letter stands on each side (at difficulty >= 1).
NEIGHBOUR_PROB = 0.4
LEVEL_MEAN, LEVEL_STD = 0.55, 0.2
VAL_DIR = 'validation'
SUPERSAMPLE = 4

# Letter families in benchmark order: a base letter, then its variants in
# code-point order. Every face below covers all of them.
FAMILIES = (
    'AÀÁÂÃÄÅĀĂĄ', 'aàáâãäåāăą', 'EÈÉÊËĒĔĖĘĚ', 'eèéêëēĕėęě',
    'IÌÍÎÏĨĪĬĮİ', 'iìíîïĩīĭįı', 'OÒÓÔÕÖØŌŎŐ', 'oòóôõöøōŏő',
    'UÙÚÛÜŨŪŬŮŰ', 'uùúûüũūŭůű', 'CÇĆĈĊČ', 'cçćĉċč', 'NÑŃŅŇ', 'nñńņň',
    'SŚŜŞŠ', 'sśŝşš', 'ZŹŻŽ', 'zźżž', 'YÝŸŶ', 'yýÿŷ',
)
# Every letter of every family, in that order: a letter's index here seeds
# its images and picks the neighbour letters.
ALL_LETTERS = ''.join(FAMILIES)
FACES = tuple(
    [f'DejaVu{kind}{style}.ttf' for kind in ('Sans', 'SansMono')
     for style in ('', '-Bold', '-Oblique', '-BoldOblique')] +
    [f'DejaVuSerif{style}.ttf'
     for style in ('', '-Bold', '-Italic', '-BoldItalic')] +
    [f'STIXGeneral{style}.ttf' for style in ('', 'Bol', 'Italic', 'BolIta')])
SPLITS = ('train', 'val', 'test')


def font_dir() -> Path:
    """matplotlib's TrueType folder (read as files; matplotlib is not
    imported)."""
    import importlib.util
    spec = importlib.util.find_spec('matplotlib')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('figkd_mmrazor.glyphs draws with the fonts that '
                          'matplotlib installs: pip install matplotlib')
    return Path(list(spec.submodule_search_locations)[0]) / 'mpl-data' / \
        'fonts' / 'ttf'


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def class_dir_name(letter: str) -> str:
    """'Ä' -> 'capital_a_diaeresis', 'ı' -> 'small_dotless_i': ASCII, and
    the case spelled out, since case-insensitive file systems merge A and a.
    """
    name = unicodedata.name(letter)
    case = 'capital' if ' CAPITAL ' in name else 'small'
    rest = name.split(' LETTER ', 1)[1].lower().replace(' with ', ' ')
    return '_'.join([case] + rest.split())


@dataclasses.dataclass(frozen=True)
class GlyphSpec:
    """Everything that determines the benchmark's files.

    Args:
        families (int): how many letter families of :data:`FAMILIES`, in
            order (20, the default: all, 148 classes; 10: the five vowels
            in both cases, 100 classes).
        train_per_class, val_per_class, test_per_class (int): images per
            class and split.
        size (int): image side in pixels.
        class_order (str): 'letter' (families contiguous) or 'shuffled'.
        difficulty (float): scales every nuisance range of
            :func:`render_glyph` (0: every image of a class in a face is
            the canonical one).
        seed (int): seed of every image and of the shuffled order.
    """
    families: int = 20
    train_per_class: int = 40
    val_per_class: int = 20
    test_per_class: int = 30
    size: int = 32
    class_order: str = 'letter'
    difficulty: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.families <= len(FAMILIES):
            raise ValueError(f'families must be in 1..{len(FAMILIES)}, got '
                             f'{self.families}')
        for split in SPLITS:
            if getattr(self, f'{split}_per_class') < 1:
                raise ValueError(f'{split}_per_class must be >= 1')
        if self.size < 16:
            raise ValueError(f'size must be >= 16 px, got {self.size}')
        if self.difficulty < 0:
            raise ValueError(f'difficulty must be >= 0, got {self.difficulty}')
        if self.class_order not in ('letter', 'shuffled'):
            raise ValueError("class_order must be 'letter' or 'shuffled', "
                             f'got {self.class_order!r}')

    def letters(self) -> List[str]:
        """The classes' letters in class-id order."""
        letters = [c for fam in FAMILIES[:self.families] for c in fam]
        if self.class_order == 'shuffled':
            order = np.random.default_rng([self.seed, 1]).permutation(
                len(letters))
            letters = [letters[i] for i in order]
        return letters

    def family_of(self, letter: str) -> int:
        return next(f for f, fam in enumerate(FAMILIES) if letter in fam)

    @property
    def num_classes(self) -> int:
        return len(self.letters())

    def class_names(self) -> List[str]:
        """CUB-style class directories, '001.capital_A', ..."""
        return [f'{i + 1:03d}.{class_dir_name(c)}'
                for i, c in enumerate(self.letters())]

    def per_class(self, split: str) -> int:
        return getattr(self, f'{split}_per_class')


# --------------------------------------------------------------------------
# Drawing.


def render_glyph(letter: str, face: Path, size: int, rng=None,
                 difficulty: float = 1.0) -> np.ndarray:
    """One ``size`` x ``size`` RGB image of ``letter`` in ``face``.

    ``rng=None`` draws the canonical image (centred, upright, no stroke,
    blur, neighbours or noise, black on white). A ``numpy`` Generator draws
    the nuisance, each range scaled by ``difficulty``: font size +-20 %,
    shift up to 8 % of the side, rotation +-12 degrees, an extra stroke of
    0-2 supersampled pixels, the letters that stand either side of it in a
    word (each with probability ``NEIGHBOUR_PROB``, a random letter of the
    benchmark, cut by the frame), blur, a two-colour scheme (ink darker than
    the paper by at least 0.25 in luminance), a background gradient and pixel
    noise, then brought to one mean and contrast (``LEVEL_MEAN``,
    ``LEVEL_STD``).
    """
    ss = size * SUPERSAMPLE
    d = difficulty

    def u(lo, hi):
        return (lo + hi) / 2 if rng is None else float(rng.uniform(lo, hi))

    em = 0.68 * size * (1 + u(-0.2, 0.2) * d)
    font = ImageFont.truetype(str(face), max(4, round(em * SUPERSAMPLE)))
    mask = Image.new('L', (ss, ss), 0)
    draw = ImageDraw.Draw(mask)
    x = (0.5 + u(-0.08, 0.08) * d) * ss
    y = (0.72 + u(-0.08, 0.08) * d) * ss  # baseline: room for accents
    stroke = 0 if rng is None else int(rng.integers(0, 3))
    draw.text((x, y), letter, fill=255, font=font, anchor='ms',
              stroke_width=stroke, stroke_fill=255)
    if rng is not None:
        gap = u(0.0, 0.1) * em * SUPERSAMPLE
        half = font.getlength(letter) / 2 + gap
        for side in (-1, 1):
            if rng.uniform() < NEIGHBOUR_PROB * min(1.0, d):
                other = ALL_LETTERS[int(rng.integers(len(ALL_LETTERS)))]
                reach = half + font.getlength(other) / 2
                draw.text((x + side * reach, y), other, fill=255, font=font,
                          anchor='ms', stroke_width=stroke, stroke_fill=255)
        mask = mask.rotate(u(-12, 12) * d, Image.BILINEAR,
                           center=(x, y - 0.3 * em * SUPERSAMPLE))
    mask = mask.resize((size, size), Image.BOX)
    if rng is not None:
        mask = mask.filter(ImageFilter.GaussianBlur(u(0, 0.8) * d))
    m = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    if rng is None:
        image = 1.0 - m
    else:
        # Dark ink on light paper, as print is: with either polarity the
        # mean image of every class is flat and a student from scratch sees
        # no first-order cue to start from (it stalls at chance on some seeds).
        bg_lum = u(0.35, 1)
        fg_lum = u(0, bg_lum - 0.25)
        bg = np.clip(bg_lum + rng.uniform(-0.15, 0.15, 3), 0, 1)
        fg = np.clip(fg_lum + rng.uniform(-0.15, 0.15, 3), 0, 1)
        ramp = np.linspace(-0.5, 0.5, size)
        direction = rng.uniform(-1, 1, 2)
        gradient = (ramp[None, :] * direction[0] +
                    ramp[:, None] * direction[1]) * 0.3
        back = np.clip(bg + gradient[..., None], 0, 1)
        image = back * (1 - m) + fg * m
        image = image + rng.normal(0, u(0.01, 0.08) * d, image.shape)
        # Auto exposure, as a scanner or camera sets its levels: every image
        # to one mean and contrast. Without it the paper's brightness and
        # the ink's contrast, which say nothing of the class, are the
        # images' largest variation, and a small network from scratch
        # stalls at chance for a random number of epochs (0 to 6 of 6).
        image = LEVEL_MEAN + (image - image.mean()) * (
            LEVEL_STD / max(float(image.std()), 1e-6))
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _image_rows(spec: GlyphSpec) -> List[Tuple[str, int, str, int, int]]:
    """``(split, class_idx, 'class_dir/split_index.png', letter_idx,
    index)`` in image-id order."""
    rows = []
    for split in SPLITS:
        for class_idx, (letter, class_dir) in enumerate(
                zip(spec.letters(), spec.class_names())):
            for index in range(spec.per_class(split)):
                rows.append((split, class_idx,
                             f'{class_dir}/{split}_{index:04d}.png',
                             ALL_LETTERS.index(letter), index))
    return rows


def _draw(job):
    """Worker: render one image to ``path``. Seeded by the letter (not its
    class id), so that both class orders hold the same images."""
    size, difficulty, seed, split, letter_idx, index, path, faces = job
    rng = np.random.default_rng(
        [seed, SPLITS.index(split), letter_idx, index])
    letter = ALL_LETTERS[letter_idx]
    face = faces[int(rng.integers(len(faces)))]
    Image.fromarray(render_glyph(letter, face, size, rng, difficulty)).save(
        path, format='PNG')


# --------------------------------------------------------------------------
# Files and manifest.


def _manifest_head(spec: GlyphSpec, fonts: Path) -> dict:
    return {
        'generator': 'figkd_mmrazor.glyphs',
        'generator_version': GENERATOR_VERSION,
        'spec': dataclasses.asdict(spec),
        'fonts': {face: _sha256(fonts / face) for face in FACES},
    }


def _file_checksums(root: Path) -> dict:
    return {
        str(p.relative_to(root)): _sha256(p)
        for p in sorted(root.rglob('*')) if p.is_file() and p.name != MANIFEST
    }


def _checksum(files: dict) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()
                          ).hexdigest()


def read_manifest(root) -> dict:
    return json.loads((Path(root) / MANIFEST).read_text())


def _check_existing(root: Path, head: dict) -> bool:
    """True if ``root`` holds this very benchmark, False if it is free;
    raises :class:`DatasetMismatchError` for anything else."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise DatasetMismatchError(f'{root} exists and is not a directory')
    if not (root / MANIFEST).is_file():
        if any(root.iterdir()):
            raise DatasetMismatchError(
                f'{root} is not empty and has no {MANIFEST}: it is not a '
                'glyph benchmark. Choose another directory; nothing was '
                'written.')
        return False
    found = read_manifest(root)
    diff = [key for key in head if found.get(key) != head[key]]
    if diff:
        raise DatasetMismatchError(
            f'{root} was written by another generator or spec (differs in: '
            f'{", ".join(diff)}; there: '
            f'{ {k: found.get(k) for k in diff if k != "fonts"} }). Delete it '
            'or choose another directory; nothing was written.')
    if _file_checksums(root) != found.get('files'):
        raise DatasetMismatchError(
            f'{root} holds this benchmark, but files are missing, added or '
            'changed since it was written. Delete the directory to '
            'regenerate it.')
    return True


def _write_cub_root(root: Path, rows, spec: GlyphSpec):
    """The three CUB files listing ``rows`` (split 'train' is 1)."""
    ids = range(1, len(rows) + 1)
    _write_text(root / 'images.txt',
                [f'{i} {path}' for i, (_, _, path, _, _) in zip(ids, rows)])
    _write_text(root / 'image_class_labels.txt',
                [f'{i} {c + 1}' for i, (_, c, _, _, _) in zip(ids, rows)])
    _write_text(root / 'train_test_split.txt',
                [f'{i} {int(s == "train")}'
                 for i, (s, _, _, _, _) in zip(ids, rows)])
    _write_text(root / 'classes.txt', [
        f'{c + 1} {name}' for c, name in enumerate(spec.class_names())])
    # One name a line, in label order: what mmpretrain's ``classes=<file>``
    # reads (classes.txt holds CUB's "<id> <name>" lines).
    _write_text(root / CLASS_NAMES, spec.class_names())


def _write(root: Path, spec: GlyphSpec, fonts: Path, head: dict,
           progress: bool, workers: int):
    rows = _image_rows(spec)
    faces = [fonts / face for face in FACES]
    jobs = []
    for split, _, path, letter_idx, index in rows:
        base = root / VAL_DIR if split == 'val' else root
        target = base / 'images' / path
        target.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((spec.size, spec.difficulty, spec.seed, split,
                     letter_idx, index, target, faces))
    bar = _Progress(len(jobs), progress)
    if workers > 1:
        with Pool(workers) as pool:
            for done, _ in enumerate(
                    pool.imap_unordered(_draw, jobs, chunksize=64), 1):
                bar.update(done)
    else:
        for done, job in enumerate(jobs, 1):
            _draw(job)
            bar.update(done)
    _write_cub_root(root, [r for r in rows if r[0] != 'val'], spec)
    _write_cub_root(root / VAL_DIR, [r for r in rows if r[0] == 'val'], spec)
    _write_text(root / 'class_families.txt', [
        f'{c + 1} {spec.family_of(letter) + 1}'
        for c, letter in enumerate(spec.letters())])
    files = _file_checksums(root)
    manifest = dict(head, files=files, checksum=_checksum(files))
    # Written last: its presence marks a complete benchmark.
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + '\n')


def make_glyphs(root,
                spec: Optional[GlyphSpec] = None,
                *,
                progress: bool = True,
                workers: Optional[int] = None,
                **params) -> Path:
    """Write the benchmark of ``spec`` to ``root`` unless it is already there.

    ``params`` override fields of ``spec`` (or of the default spec). Files
    are drawn in a sibling temporary directory and renamed into place, so an
    interrupted run leaves nothing at ``root``. ``workers`` processes draw
    (default: every CPU). Returns ``root`` as a :class:`~pathlib.Path`.
    """
    spec = dataclasses.replace(spec or GlyphSpec(), **params)
    fonts = font_dir()
    head = _manifest_head(spec, fonts)
    return write_atomically(
        Path(root), lambda path: _check_existing(path, head),
        lambda path: _write(path, spec, fonts, head, progress,
                            workers or os.cpu_count() or 1))


def main(argv: Optional[Sequence[str]] = None) -> Path:
    parser = spec_parser('Draw the glyph benchmark (CUB-200-2011 layout) '
                         "from matplotlib's fonts.", GlyphSpec)
    parser.add_argument('--workers', type=int, help='drawing processes '
                        '(default: every CPU)')
    args = vars(parser.parse_args(argv))
    out_dir, quiet, workers = (args.pop('out_dir'), args.pop('quiet'),
                               args.pop('workers'))
    try:
        spec = GlyphSpec(**args)
    except ValueError as e:
        parser.error(str(e))
    root = make_glyphs(out_dir, spec, progress=not quiet, workers=workers)
    manifest = read_manifest(root)
    print(f'{root}: {spec.num_classes} classes ({spec.families} letter '
          f'families), {spec.train_per_class} / {spec.val_per_class} / '
          f'{spec.test_per_class} train / val / test images a class, '
          f'{spec.size} px; checksum {manifest["checksum"][:16]}')
    return root


if __name__ == '__main__':
    main()
