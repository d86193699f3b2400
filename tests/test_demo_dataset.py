"""The synthetic fine-grained demo dataset: layout, determinism, hierarchy."""
import filecmp
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from figkd_mmrazor import demo
from figkd_mmrazor.demo import DatasetMismatchError, DemoSpec, make_demo_cub

# Small enough to write in well under a second.
SMALL = DemoSpec(families=3, species_per_family=2, train_per_class=3,
                 test_per_class=2, size=32, seed=7)


def _tree(root):
    return sorted(p.relative_to(root) for p in root.rglob('*') if p.is_file())


@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    return make_demo_cub(tmp_path_factory.mktemp('demo') / 'cub', SMALL,
                         progress=False)


def test_spec_names_and_hierarchy():
    spec = DemoSpec()
    assert spec.num_classes >= 50 and spec.num_images >= 1000
    names = spec.class_names()
    assert names[0] == '001.Family0_Species0'
    assert names[spec.species_per_family] == '006.Family1_Species0'
    # Classes are ordered along the hierarchy: family-major.
    families = [spec.family_of(c) for c in range(spec.num_classes)]
    assert families == sorted(families)
    assert set(families) == set(range(spec.families))
    # Species of a family are distinct in their traits.
    for family in range(spec.families):
        members = range(family * spec.species_per_family,
                        (family + 1) * spec.species_per_family)
        traits = {tuple(spec.species_traits(c).items()) for c in members}
        assert len(traits) == spec.species_per_family


def test_loads_with_mmpretrain_cub(small_root):
    from mmpretrain.datasets import CUB
    from mmpretrain.datasets.transforms import LoadImageFromFile

    spec = DemoSpec.from_dir(small_root)
    assert spec == SMALL
    for split, per_class in (('train', SMALL.train_per_class),
                             ('test', SMALL.test_per_class)):
        cub = CUB(data_root=str(small_root), split=split,
                  classes=spec.class_names())
        assert len(cub) == SMALL.num_classes * per_class
        assert cub.CLASSES == tuple(spec.class_names())
        labels = [cub.get_data_info(i)['gt_label'] for i in range(len(cub))]
        assert labels == [c for c in range(SMALL.num_classes)
                          for _ in range(per_class)]
        for i in range(len(cub)):
            info = cub.get_data_info(i)
            class_dir = spec.class_names()[info['gt_label']]
            assert f'/images/{class_dir}/' in info['img_path']
            with Image.open(info['img_path']) as image:
                assert image.size == (SMALL.size, SMALL.size)
                assert image.mode == 'RGB'
        loaded = LoadImageFromFile()(dict(img_path=cub.get_data_info(0)
                                          ['img_path']))
        assert loaded['img'].shape == (SMALL.size, SMALL.size, 3)


def test_files_match_the_arrays(small_root):
    with Image.open(small_root / 'images' / '004.Family1_Species1' /
                    'Family1_Species1_0002.png') as image:
        np.testing.assert_array_equal(np.asarray(image),
                                      demo.render_image(SMALL, 3, 2))
    families = (small_root / 'class_families.txt').read_text().split('\n')
    assert families[:3] == ['1 1', '2 1', '3 2']


def test_deterministic_and_seed_dependent(small_root, tmp_path):
    again = make_demo_cub(tmp_path / 'again', SMALL, progress=False)
    assert _tree(again) == _tree(small_root)
    match, mismatch, errors = filecmp.cmpfiles(
        small_root, again, [str(p) for p in _tree(small_root)], shallow=False)
    assert not mismatch and not errors

    reseeded = make_demo_cub(tmp_path / 'reseeded', SMALL, seed=8,
                             progress=False)
    image = 'images/001.Family0_Species0/Family0_Species0_0000.png'
    assert not filecmp.cmp(small_root / image, reseeded / image,
                           shallow=False)


def test_image_does_not_depend_on_generation_order():
    first = demo.render_image(SMALL, 5, 4)
    for c in range(SMALL.num_classes):
        demo.render_image(SMALL, c, 0)
    np.testing.assert_array_equal(demo.render_image(SMALL, 5, 4), first)


def test_same_family_is_closer_than_other_families():
    spec = DemoSpec(families=4, species_per_family=3)
    per_class = 30
    images = np.stack([
        np.stack([demo.render_image(spec, c, i) for i in range(per_class)])
        for c in range(spec.num_classes)
    ]).astype(np.float64)
    means = images.mean(axis=1)
    # Squared distance of class-mean images, less what the nuisance alone
    # adds to it (the variance of a mean of `per_class` images): an unbiased
    # estimate of the distance between the classes' expected images.
    noise = images.var(axis=1, ddof=1).mean(axis=(1, 2, 3)) / per_class
    dist2 = ((means[:, None] - means[None])**2).mean(axis=(2, 3, 4))
    dist2 -= noise[:, None] + noise[None]
    within, across = [], []
    for i in range(spec.num_classes):
        for j in range(i + 1, spec.num_classes):
            same = spec.family_of(i) == spec.family_of(j)
            (within if same else across).append(dist2[i, j])
    assert np.mean(across) > 20  # families differ far beyond the noise
    assert np.mean(within) < 0.5 * np.mean(across)


def test_species_differ_only_in_small_details():
    # Without nuisance every image of a class is the class's clean drawing.
    spec = DemoSpec(families=4, species_per_family=3, difficulty=0)
    clean = [demo.render_image(spec, c, 0).astype(int)
             for c in range(spec.num_classes)]
    np.testing.assert_array_equal(demo.render_image(spec, 0, 1), clean[0])
    for i in range(spec.num_classes):
        for j in range(i + 1, spec.num_classes):
            changed = (np.abs(clean[i] - clean[j]).max(axis=2) > 20).mean()
            if spec.family_of(i) == spec.family_of(j):
                # Distinguishable, but only in a small region.
                assert 0 < changed < 0.06, (i, j, changed)
            else:
                assert changed > 0.06, (i, j, changed)


def test_skips_when_present(small_root, monkeypatch):
    before = {p: (small_root / p).stat().st_mtime_ns
              for p in _tree(small_root)}

    def no_drawing(*args):
        raise AssertionError('the dataset was drawn again')

    monkeypatch.setattr(demo, 'render_image', no_drawing)
    assert make_demo_cub(small_root, SMALL, progress=False) == small_root
    # The same spec given as keyword overrides of the default spec.
    fields = json.loads(SMALL.to_json())
    del fields['generator_version']
    assert make_demo_cub(str(small_root), progress=False,
                         **fields) == small_root
    after = {p: (small_root / p).stat().st_mtime_ns for p in _tree(small_root)}
    assert after == before


def test_refuses_other_content(small_root, tmp_path):
    with pytest.raises(DatasetMismatchError, match='seed: 7 there, 8'):
        make_demo_cub(small_root, SMALL, seed=8, progress=False)

    user_dir = tmp_path / 'mine'
    user_dir.mkdir()
    (user_dir / 'notes.txt').write_text('keep me')
    with pytest.raises(DatasetMismatchError, match='not empty'):
        make_demo_cub(user_dir, SMALL, progress=False)
    assert _tree(user_dir) == [user_dir.joinpath('notes.txt').relative_to(
        user_dir)]


def test_incomplete_dataset_is_reported(tmp_path):
    root = make_demo_cub(tmp_path / 'cub', SMALL, progress=False)
    next((root / 'images').rglob('*.png')).unlink()
    with pytest.raises(DatasetMismatchError, match='missing'):
        make_demo_cub(root, SMALL, progress=False)


def test_empty_directory_is_filled_and_no_staging_left(tmp_path):
    root = tmp_path / 'empty'
    root.mkdir()
    make_demo_cub(root, SMALL, progress=False)
    assert (root / 'demo_spec.json').is_file()
    assert [p.name for p in tmp_path.iterdir()] == ['empty']


def test_command_line(tmp_path, capsys):
    root = demo.main([str(tmp_path / 'cli'), '--families', '2',
                      '--species-per-family', '2', '--train-per-class', '1',
                      '--test-per-class', '1', '--size', '16', '--quiet'])
    assert DemoSpec.from_dir(root) == DemoSpec(
        families=2, species_per_family=2, train_per_class=1,
        test_per_class=1, size=16)
    assert '8 images of 16x16 px' in capsys.readouterr().out


def test_generator_needs_neither_torch_nor_mmengine():
    # Loaded by path, so that the parent package's own imports don't count.
    path = demo.__file__
    code = '\n'.join([
        'import importlib.util, sys',
        f'spec = importlib.util.spec_from_file_location("d", {path!r})',
        'spec.loader.exec_module(importlib.util.module_from_spec(spec))',
        'print(sorted(m for m in ("torch", "mmengine") if m in sys.modules))',
    ])
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == '[]'
