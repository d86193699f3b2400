"""The glyph benchmark: layout, determinism, splits, classes, manifest."""
import dataclasses
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from figkd_mmrazor import glyphs
from figkd_mmrazor.demo import DatasetMismatchError
from figkd_mmrazor.glyphs import FACES, GlyphSpec, make_glyphs, render_glyph

# Two letter families (20 classes), a few images each: about a second.
SMALL = GlyphSpec(families=2, train_per_class=4, val_per_class=2,
                  test_per_class=3, size=32, seed=3)


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    return make_glyphs(tmp_path_factory.mktemp('glyphs') / 'g', SMALL,
                       progress=False, workers=2)


def _rows(root):
    """``{image_id: (path, class_id, is_train)}`` as mmpretrain reads them."""
    def column(name):
        return dict(line.split() for line in
                    (root / name).read_text().splitlines())
    paths, labels = column('images.txt'), column('image_class_labels.txt')
    split = column('train_test_split.txt')
    return {i: (paths[i], int(labels[i]), split[i] == '1') for i in paths}


def test_class_names_are_ascii_and_unique_without_case():
    names = GlyphSpec().class_names()
    assert len(names) == GlyphSpec().num_classes == 148
    assert all(n.isascii() for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert names[:3] == ['001.capital_a', '002.capital_a_grave',
                         '003.capital_a_acute']
    assert glyphs.class_dir_name('ı') == 'small_dotless_i'


def test_letter_order_keeps_families_together_and_shuffled_does_not():
    letter = GlyphSpec()
    families = [letter.family_of(c) for c in letter.letters()]
    assert families == sorted(families)
    shuffled = GlyphSpec(class_order='shuffled')
    assert sorted(shuffled.letters()) == sorted(letter.letters())
    moved = [f for f in (shuffled.family_of(c) for c in shuffled.letters())]
    assert moved != sorted(moved)


def test_loads_with_mmpretrain_cub(small_root):
    from mmpretrain.datasets import CUB
    from mmpretrain.datasets.transforms import LoadImageFromFile

    names = SMALL.class_names()
    for root, split, per_class in (
            (small_root, 'train', SMALL.train_per_class),
            (small_root, 'test', SMALL.test_per_class),
            (small_root / glyphs.VAL_DIR, 'test', SMALL.val_per_class)):
        cub = CUB(data_root=str(root), split=split, classes=names)
        assert len(cub) == SMALL.num_classes * per_class
        labels = [cub.get_data_info(i)['gt_label'] for i in range(len(cub))]
        # Balanced: every class has the same number of images in a split.
        assert np.bincount(labels).tolist() == [per_class] * len(names)
        loaded = LoadImageFromFile()(dict(img_path=cub.get_data_info(0)
                                          ['img_path']))
        assert loaded['img'].shape == (SMALL.size, SMALL.size, 3)


def test_no_image_in_two_splits(small_root):
    # By file and by content: the splits draw from separate seeds.
    by_split = {}
    for root, name in ((small_root, None), (small_root / glyphs.VAL_DIR,
                                            'val')):
        for path, _, is_train in _rows(root).values():
            split = name or ('train' if is_train else 'test')
            digest = hashlib.sha256(
                (root / 'images' / path).read_bytes()).hexdigest()
            by_split.setdefault(split, set()).add(digest)
            assert path.split('/')[1].startswith(split)
    assert sum(map(len, by_split.values())) == sum(
        SMALL.per_class(s) for s in glyphs.SPLITS) * SMALL.num_classes
    train, val, test = by_split['train'], by_split['val'], by_split['test']
    assert not (train & val or train & test or val & test)


def test_every_face_has_every_letter():
    # A missing letter would be drawn as the face's "no glyph" box.
    from matplotlib.ft2font import FT2Font
    for face in FACES:
        charmap = FT2Font(str(glyphs.font_dir() / face)).get_charmap()
        missing = [c for c in ''.join(glyphs.FAMILIES) if ord(c) not in
                   charmap]
        assert not missing, (face, missing)


def test_no_two_classes_render_alike_in_any_face():
    fonts = glyphs.font_dir()
    letters = ''.join(glyphs.FAMILIES)
    for face in FACES:
        images = {render_glyph(c, fonts / face, 32).tobytes(): c
                  for c in letters}
        assert len(images) == len(letters), face


def test_deterministic_and_seed_dependent(small_root, tmp_path):
    again = make_glyphs(tmp_path / 'again', SMALL, progress=False,
                        workers=1)  # another process count, same files
    first = glyphs.read_manifest(small_root)
    assert glyphs.read_manifest(again)['checksum'] == first['checksum']
    other = make_glyphs(tmp_path / 'other', SMALL, seed=4, progress=False)
    assert glyphs.read_manifest(other)['checksum'] != first['checksum']


def test_shuffled_order_holds_the_same_images(small_root, tmp_path):
    shuffled = make_glyphs(tmp_path / 's', SMALL, class_order='shuffled',
                           progress=False)
    by_letter = {}
    for spec, root in ((SMALL, small_root),
                       (dataclasses.replace(SMALL, class_order='shuffled'),
                        shuffled)):
        letters = spec.letters()
        for path, label, _ in _rows(root).values():
            content = (root / 'images' / path).read_bytes()
            key = (letters[label - 1], path.split('/')[1])
            by_letter.setdefault(key, set()).add(content)
    assert all(len(v) == 1 for v in by_letter.values())


def test_manifest_refuses_a_changed_generator(small_root, monkeypatch):
    assert make_glyphs(small_root, SMALL, progress=False) == small_root
    monkeypatch.setattr(glyphs, 'GENERATOR_VERSION',
                        glyphs.GENERATOR_VERSION + 1)
    with pytest.raises(DatasetMismatchError, match='generator_version'):
        make_glyphs(small_root, SMALL, progress=False)


def test_manifest_refuses_another_spec_and_changed_files(small_root,
                                                         tmp_path):
    with pytest.raises(DatasetMismatchError, match='spec'):
        make_glyphs(small_root, SMALL, size=40, progress=False)
    copy = tmp_path / 'copy'
    subprocess.run(['cp', '-r', str(small_root), str(copy)], check=True)
    image = next((copy / 'images').rglob('*.png'))
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(image)
    with pytest.raises(DatasetMismatchError, match='changed'):
        make_glyphs(copy, SMALL, progress=False)
    manifest = glyphs.read_manifest(small_root)
    assert json.loads((small_root / glyphs.MANIFEST).read_text()) == manifest


def test_refuses_a_foreign_directory_and_leaves_it(tmp_path):
    (tmp_path / 'mine.txt').write_text('keep')
    with pytest.raises(DatasetMismatchError, match='not a glyph benchmark'):
        make_glyphs(tmp_path, SMALL, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ['mine.txt']


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(glyphs, '_write_cub_root', fail)
    with pytest.raises(KeyboardInterrupt):
        make_glyphs(tmp_path / 'g', SMALL, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, '-m', 'figkd_mmrazor.glyphs', str(tmp_path / 'g'),
         '--families', '1', '--train-per-class', '2', '--val-per-class', '1',
         '--test-per-class', '1', '--quiet'],
        check=True, capture_output=True, text=True).stdout
    assert '10 classes' in out and 'checksum' in out
    bad = subprocess.run(
        [sys.executable, '-m', 'figkd_mmrazor.glyphs', str(tmp_path / 'h'),
         '--families', '99'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'families must be in' in bad.stderr
    assert not (tmp_path / 'h').exists()
