"""Dataset layouts: tiny fake copies of each official release, loaded with the
mmpretrain classes exactly as a config would, plus the start-up checks."""
import importlib.util
import os
import os.path as osp
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from mmpretrain.datasets import (CIFAR100, CUB, CustomDataset, FGVCAircraft,
                                 Flowers102, OxfordIIITPet, StanfordCars)
from mmpretrain.datasets.categories import (CIFAR100_CATEGORIES,
                                            CUB_CATEGORIES,
                                            FGVCAIRCRAFT_CATEGORIES,
                                            OxfordIIITPet_CATEGORIES,
                                            STANFORDCARS_CATEGORIES)
from PIL import Image

from figkd_mmrazor import datasets as fd

REPO = Path(__file__).resolve().parents[1]


def _load_tool(name):
    path = REPO / 'tools' / 'dataset_converters' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'_conv_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dogs_conv = _load_tool('stanford_dogs')
tiny_conv = _load_tool('tiny_imagenet')


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    """No test may reach the network, even through mmpretrain's CIFAR."""
    def refuse(*args, **kwargs):
        raise AssertionError('a test tried to download a dataset')

    monkeypatch.setattr(
        'mmpretrain.datasets.cifar.download_and_extract_archive', refuse)


def _img(path, value=0):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new('RGB', (8, 8), (value, value, value)).save(path)


def _text(path, lines):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(line + '\n' for line in lines))


def _labels(dataset):
    return [int(dataset.get_data_info(i)['gt_label'])
            for i in range(len(dataset))]


def _paths(dataset):
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


# --------------------------------------------------------------- fake layouts
def make_cub(root):
    """CUB_200_2011/: images/<id>.<Name>/x.jpg + the three id-keyed txts."""
    rows = []  # (image id, class id 1-based, rel path, is_train)
    for cls in (1, 2, 3):
        folder = f'{cls:03d}.{CUB_CATEGORIES[cls - 1]}'
        for k in range(2):
            rel = f'{folder}/{CUB_CATEGORIES[cls - 1]}_{k}.jpg'
            _img(root / 'images' / rel)
            rows.append((len(rows) + 1, cls, rel, 1 - k))
    _text(root / 'images.txt', [f'{i} {rel}' for i, _, rel, _ in rows])
    _text(root / 'image_class_labels.txt', [f'{i} {c}' for i, c, _, _ in rows])
    _text(root / 'train_test_split.txt', [f'{i} {t}' for i, _, _, t in rows])
    return dict(type='CUB', data_root=str(root), split='train')


def _mat_struct(path, fields, rows):
    """A 1xN MATLAB struct array, the form of the Stanford Cars annotations."""
    ann = np.zeros((1, len(rows)), dtype=[(f, 'O') for f in fields])
    for i, row in enumerate(rows):
        for f, v in zip(fields, row):
            ann[0, i][f] = v if isinstance(v, str) else np.array([[v]],
                                                                 np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.savemat(path, {'annotations': ann})


CARS_ROWS = [(f'car_ims/{i + 1:06d}.jpg', cls, test) for i, (cls, test)
             in enumerate([(1, 0), (2, 0), (3, 0), (1, 1), (3, 1)])]


def make_cars(root, rows=CARS_ROWS):
    """Stanford_Cars/: car_ims/ + cars_annos.mat (the all-in-one layout)."""
    for rel, _, _ in rows:
        _img(root / rel)
    _mat_struct(root / 'cars_annos.mat', ('relative_im_path', 'class', 'test'),
                rows)
    return dict(type='StanfordCars', data_root=str(root), split='train')


def make_cars_devkit(root):
    """Stanford_Cars/: cars_train/ cars_test/ devkit/ (the split layout)."""
    for split, mat, labels in (
            ('train', 'cars_train_annos.mat', [1, 2, 3]),
            ('test', 'cars_test_annos_withlabels.mat', [2, 3])):
        rows = [(f'{i + 1:05d}.jpg', cls) for i, cls in enumerate(labels)]
        for name, _ in rows:
            _img(root / f'cars_{split}' / name)
        _mat_struct(root / 'devkit' / mat, ('fname', 'class'), rows)
    return dict(type='StanfordCars', data_root=str(root), split='train')


AIRCRAFT = (FGVCAIRCRAFT_CATEGORIES[0], 'BAE 146-200', 'Beechcraft 1900')


def make_aircraft(root):
    """fgvc-aircraft-2013b/data/: images/<7 digits>.jpg + images_variant_*."""
    data = root / 'data'
    splits = {'train': [(0, 0), (1, 1)], 'val': [(2, 2), (3, 0)],
              'test': [(4, 1), (5, 2)]}
    splits['trainval'] = splits['train'] + splits['val']
    for split, rows in splits.items():
        for img_id, _ in rows:
            _img(data / 'images' / f'{1000000 + img_id}.jpg')
        _text(data / f'images_variant_{split}.txt',
              [f'{1000000 + i} {AIRCRAFT[v]}' for i, v in rows])
    _text(data / 'variants.txt', list(AIRCRAFT))
    return dict(type='FGVCAircraft', data_root=str(root), split='trainval')


def make_flowers(root, labels=(1, 2, 3, 1, 2, 3, 1, 2), trnid=(1, 2),
                 valid=(3, 4), tstid=(5, 6, 7, 8)):
    """Flowers102/: jpg/image_%05d.jpg + imagelabels.mat + setid.mat."""
    for i in range(len(labels)):
        _img(root / 'jpg' / f'image_{i + 1:05d}.jpg')
    sio.savemat(root / 'imagelabels.mat',
                {'labels': np.array([labels], np.uint8)})
    sio.savemat(root / 'setid.mat', {
        name: np.array([ids], np.uint16).reshape(1, len(ids))
        for name, ids in (('trnid', trnid), ('valid', valid),
                          ('tstid', tstid))})
    return dict(type='Flowers102', data_root=str(root), split='trainval')


def make_pets(root):
    """Oxford-IIIT_Pets/: images/<Breed>_<k>.jpg, annotations/<split>.txt."""
    rows = {'trainval': [('Abyssinian_1', 1, 1, 1),
                         ('american_bulldog_1', 2, 2, 1),
                         ('Abyssinian_2', 1, 1, 1)],
            'test': [('american_bulldog_2', 2, 2, 1)]}
    for split, items in rows.items():
        for name, *_ in items:
            _img(root / 'images' / f'{name}.jpg')
        _text(root / 'annotations' / f'{split}.txt',
              [' '.join(map(str, r)) for r in items])
    return dict(type='OxfordIIITPet', data_root=str(root), split='trainval')


def make_cifar100(root):
    """cifar100/cifar-100-python/{train,test,meta}: the python pickles."""
    rng = np.random.default_rng(0)
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True)
    batches = {}
    for split, labels in (('train', [3, 7, 99, 0]), ('test', [5, 5])):
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        batches[split] = (data, labels)
        entry = {'filenames': [f'{split}_{i}.png' for i in range(len(labels))],
                 'batch_label': split, 'fine_labels': labels,
                 'coarse_labels': [lab // 5 for lab in labels], 'data': data}
        (folder / split).write_bytes(pickle.dumps(entry))
    (folder / 'meta').write_bytes(pickle.dumps(
        {'fine_label_names': list(CIFAR100_CATEGORIES),
         'coarse_label_names': [f'c{i}' for i in range(20)]}))
    return (dict(type='CIFAR100', data_root=str(root), split='train',
                 download=False), batches)


DOG_BREEDS = ('n02085620-Chihuahua', 'n02085782-Japanese_spaniel',
              'n02116738-African_hunting_dog')


def _cell(strings):
    cell = np.empty((len(strings), 1), dtype=object)
    cell[:, 0] = strings
    return cell


def make_dogs(root, lists_dir='lists'):
    """stanford_dogs/: Images/<synset>-<breed>/*.jpg + lists/*_list.mat."""
    lists = {'train_list.mat': [], 'test_list.mat': []}
    for label, breed in enumerate(DOG_BREEDS, 1):
        synset = breed.split('-')[0]
        for k in range(3):
            rel = f'{breed}/{synset}_{k}.jpg'
            _img(root / 'Images' / rel)
            lists['test_list.mat' if k == 2 else 'train_list.mat'].append(
                (rel, label))
    (root / lists_dir).mkdir(parents=True, exist_ok=True)
    for name, rows in lists.items():
        # Field layout of the official files: Nx1 cells and Nx1 doubles.
        sio.savemat(root / lists_dir / name,
                    {'file_list': _cell([r for r, _ in rows]),
                     'annotation_list': _cell([r[:-4] for r, _ in rows]),
                     'labels': np.array([[lab] for _, lab in rows], float)})
    return lists


TINY_WNIDS = ('n09193705', 'n01443537', 'n04067472')  # wnids.txt order
TINY_WORDS = {'n01443537': 'goldfish, Carassius auratus',
              'n04067472': 'reel', 'n09193705': 'alp',
              'n00001740': 'entity'}  # words.txt covers all of ImageNet


def make_tiny(root):
    """tiny-imagenet-200/: wnids, words, train/<wnid>/images, val/, test/."""
    _text(root / 'wnids.txt', list(TINY_WNIDS))
    _text(root / 'words.txt', [f'{w}\t{n}' for w, n in TINY_WORDS.items()])
    for wnid in TINY_WNIDS:
        for k in range(2):
            _img(root / 'train' / wnid / 'images' / f'{wnid}_{k}.JPEG')
        _text(root / 'train' / wnid / f'{wnid}_boxes.txt',
              [f'{wnid}_{k}.JPEG\t0\t0\t7\t7' for k in range(2)])
    val = [('val_0.JPEG', 'n04067472'), ('val_1.JPEG', 'n01443537'),
           ('val_2.JPEG', 'n09193705'), ('val_3.JPEG', 'n04067472')]
    for name, _ in val:
        _img(root / 'val' / 'images' / name)
    _text(root / 'val' / 'val_annotations.txt',
          [f'{n}\t{w}\t0\t0\t7\t7' for n, w in val])
    _img(root / 'test' / 'images' / 'test_0.JPEG')
    return val


def custom_cfg(root, split='train'):
    """The config the recipes use for a converted dataset."""
    return dict(type='CustomDataset', data_root=str(root),
                ann_file=f'meta/{split}.txt', data_prefix='',
                classes=str(root / 'meta' / 'classes.txt'))


def _build(cfg):
    kwargs = {k: v for k, v in cfg.items() if k != 'type'}
    return {'CUB': CUB, 'StanfordCars': StanfordCars, 'CIFAR100': CIFAR100,
            'FGVCAircraft': FGVCAircraft, 'Flowers102': Flowers102,
            'OxfordIIITPet': OxfordIIITPet,
            'CustomDataset': CustomDataset}[cfg['type']](**kwargs)


# ------------------------------------------------- loading with mmpretrain
def test_cub(tmp_path):
    cfg = make_cub(tmp_path / 'CUB_200_2011')
    fd.check_dataset_root(cfg)
    fd.check_images(cfg)
    train = _build(cfg)
    test = _build(dict(cfg, split='test'))
    assert (len(train), len(test)) == (3, 3)
    assert _labels(train) == [0, 1, 2] and _labels(test) == [0, 1, 2]
    assert train.CLASSES[2] == 'Sooty_Albatross'
    assert all(osp.isfile(p) for p in _paths(train) + _paths(test))


@pytest.mark.parametrize('make,test_labels', [(make_cars, [0, 2]),
                                               (make_cars_devkit, [1, 2])])
def test_stanford_cars(tmp_path, make, test_labels):
    cfg = make(tmp_path / 'Stanford_Cars')
    for split, labels in (('train', [0, 1, 2]), ('test', test_labels)):
        split_cfg = dict(cfg, split=split)
        fd.check_dataset_root(split_cfg)
        fd.check_images(split_cfg)
        dataset = _build(split_cfg)
        assert _labels(dataset) == labels
        assert all(osp.isfile(p) for p in _paths(dataset))
    assert dataset.CLASSES[:3] == STANFORDCARS_CATEGORIES[:3]


def test_fgvc_aircraft(tmp_path):
    cfg = make_aircraft(tmp_path / 'fgvc-aircraft-2013b')
    expected = {'train': 2, 'val': 2, 'trainval': 4, 'test': 2}
    for split, n in expected.items():
        fd.check_dataset_root(dict(cfg, split=split))
        assert len(_build(dict(cfg, split=split))) == n
    trainval = _build(cfg)
    names = [trainval.CLASSES[lab] for lab in _labels(trainval)]
    assert names == [AIRCRAFT[0], AIRCRAFT[1], AIRCRAFT[2], AIRCRAFT[0]]
    fd.check_images(cfg)


def test_flowers102(tmp_path):
    cfg = make_flowers(tmp_path / 'Flowers102')
    fd.check_dataset_root(cfg)
    fd.check_images(cfg)
    assert _labels(_build(cfg)) == [0, 1, 2, 0]
    assert _labels(_build(dict(cfg, split='train'))) == [0, 1]
    assert _labels(_build(dict(cfg, split='test'))) == [1, 2, 0, 1]


def test_oxford_pets(tmp_path):
    cfg = make_pets(tmp_path / 'Oxford-IIIT_Pets')
    fd.check_dataset_root(cfg)
    fd.check_images(cfg)
    trainval, test = _build(cfg), _build(dict(cfg, split='test'))
    assert _labels(trainval) == [0, 1, 0] and _labels(test) == [1]
    assert trainval.CLASSES[:2] == OxfordIIITPet_CATEGORIES[:2]


def test_cifar100(tmp_path, monkeypatch):
    cfg, batches = make_cifar100(tmp_path / 'cifar100')
    fd.check_dataset_root(cfg)
    fd.check_images(cfg)  # nothing to check: images live in the pickles
    # mmpretrain verifies the official md5 of each batch; ours are fakes.
    monkeypatch.setattr(CIFAR100, 'train_list', [['train', None]])
    monkeypatch.setattr(CIFAR100, 'test_list', [['test', None]])
    for split in ('train', 'test'):
        dataset = _build(dict(cfg, split=split))
        data, labels = batches[split]
        assert _labels(dataset) == labels
        img = dataset.get_data_info(0)['img']
        assert img.shape == (32, 32, 3)
        np.testing.assert_array_equal(img, data[0].reshape(3, 32, 32)
                                      .transpose(1, 2, 0))
    assert dataset.CLASSES[99] == CIFAR100_CATEGORIES[99] == 'worm'


def test_stanford_dogs_convert_and_load(tmp_path):
    root = tmp_path / 'stanford_dogs'
    make_dogs(root)
    assert dogs_conv.convert(str(root)) == {'train': 6, 'val': 3}
    meta = {f: (root / 'meta' / f).read_text() for f in
            ('train.txt', 'val.txt', 'classes.txt')}
    assert meta['classes.txt'].split('\n')[:3] == [
        'Chihuahua', 'Japanese_spaniel', 'African_hunting_dog']
    dogs_conv.convert(str(root))  # idempotent: same output, no leftovers
    assert meta == {f: (root / 'meta' / f).read_text() for f in meta}
    assert sorted(os.listdir(root / 'meta')) == sorted(meta)

    for split, labels in (('train', [0, 0, 1, 1, 2, 2]), ('val', [0, 1, 2])):
        cfg = custom_cfg(root, split)
        fd.check_dataset_root(cfg)
        fd.check_images(cfg)
        dataset = _build(cfg)
        assert _labels(dataset) == labels
        assert dataset.CLASSES == ('Chihuahua', 'Japanese_spaniel',
                                   'African_hunting_dog')
        assert _paths(dataset)[0] == osp.join(
            str(root), 'Images/n02085620-Chihuahua/n02085620_'
            + ('0.jpg' if split == 'train' else '2.jpg'))


def test_stanford_dogs_lists_at_top_level(tmp_path):
    make_dogs(tmp_path, lists_dir='.')
    assert dogs_conv.convert(str(tmp_path)) == {'train': 6, 'val': 3}


def test_stanford_dogs_converter_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='Images'):
        dogs_conv.convert(str(tmp_path))
    make_dogs(tmp_path)
    os.remove(tmp_path / 'lists' / 'test_list.mat')
    with pytest.raises(FileNotFoundError, match=re.escape(
            str(tmp_path / 'lists' / 'test_list.mat'))):
        dogs_conv.convert(str(tmp_path))
    make_dogs(tmp_path)
    missing = tmp_path / 'Images' / DOG_BREEDS[1] / 'n02085782_0.jpg'
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        dogs_conv.convert(str(tmp_path))


def test_tiny_imagenet_convert_and_load(tmp_path):
    root = tmp_path / 'tiny-imagenet-200'
    val = make_tiny(root)
    assert tiny_conv.convert(str(root)) == {'train': 6, 'val': 4}
    before = (root / 'meta' / 'train.txt').read_text()
    tiny_conv.convert(str(root))
    assert (root / 'meta' / 'train.txt').read_text() == before

    sorted_wnids = sorted(TINY_WNIDS)  # ImageFolder order, not wnids.txt's
    train = _build(custom_cfg(root, 'train'))
    assert train.CLASSES == ('goldfish', 'reel', 'alp')
    assert _labels(train) == [0, 0, 1, 1, 2, 2]
    assert _paths(train)[0] == osp.join(
        str(root), f'train/{sorted_wnids[0]}/images/{sorted_wnids[0]}_0.JPEG')
    valset = _build(custom_cfg(root, 'val'))
    assert _labels(valset) == [sorted_wnids.index(w) for _, w in val]
    for split in ('train', 'val'):
        fd.check_dataset_root(custom_cfg(root, split))
        fd.check_images(custom_cfg(root, split))


def test_tiny_imagenet_converter_errors(tmp_path):
    make_tiny(tmp_path)
    ann = tmp_path / 'val' / 'val_annotations.txt'
    lines = ann.read_text().splitlines()
    ann.write_text('\n'.join(lines[:2] + ['val_2.JPEG n09193705'] + lines[3:]))
    with pytest.raises(ValueError, match=re.escape(f'{ann}:3')):
        tiny_conv.convert(str(tmp_path))
    os.remove(ann)
    with pytest.raises(FileNotFoundError, match=re.escape(str(ann))):
        tiny_conv.convert(str(tmp_path))


def test_converters_run_as_scripts(tmp_path):
    import subprocess
    import sys
    make_tiny(tmp_path / 'tiny')
    make_dogs(tmp_path / 'dogs')
    for script, root in (('tiny_imagenet', 'tiny'), ('stanford_dogs', 'dogs')):
        out = subprocess.run(
            [sys.executable, str(REPO / 'tools' / 'dataset_converters'
                                 / f'{script}.py'), str(tmp_path / root)],
            capture_output=True, text=True, check=True).stdout
        assert 'meta/train.txt' in out
        assert (tmp_path / root / 'meta' / 'classes.txt').is_file()


# ------------------------------------------------------ check_dataset_root
def _doc_headings():
    text = (REPO / 'docs' / 'datasets.md').read_text()
    return {h.strip() for h in re.findall(r'^#+ (.+)$', text, flags=re.M)}


def test_guide_sections_named_in_messages_exist():
    headings = _doc_headings()
    used = {section for _, section in fd._DATASETS.values()}
    used |= {name for _, name, _ in fd._CONVERTED}
    assert used <= headings, used - headings
    # GitHub's slug of a heading: lower case, punctuation but '-' dropped.
    assert fd.guide_anchor('Oxford-IIIT Pets') == 'oxford-iiit-pets'
    assert fd.guide_anchor('CustomDataset annotation files') == \
        'customdataset-annotation-files'
    anchors = {fd.guide_anchor(h) for h in headings}
    for conv in (dogs_conv, tiny_conv):
        for anchor in re.findall(r'datasets\.md#([\w-]+)',
                                 Path(conv.__file__).read_text()):
            assert anchor in anchors


def _names_guide_section(msg, section):
    """The message names the guide's section in words (an installed package
    has no docs/ folder) and its anchor in the source."""
    assert f'section "{section}" of the figkd_mmrazor dataset guide' in msg
    assert f'docs/datasets.md#{fd.guide_anchor(section)}' in msg


def test_missing_root(tmp_path):
    missing = tmp_path / 'CUB_200_2011'
    with pytest.raises(FileNotFoundError) as err:
        fd.check_dataset_root(dict(type='CUB', data_root=str(missing)))
    msg = str(err.value)
    assert str(missing) in msg and 'CUB-200-2011' in msg
    _names_guide_section(msg, 'CUB-200-2011')


# (maker, file to delete relative to data_root, section of the guide)
MISSING = [
    (make_cub, 'image_class_labels.txt', 'CUB-200-2011'),
    (make_cub, 'images', 'CUB-200-2011'),
    (make_cars, 'cars_annos.mat', 'Stanford Cars'),  # -> devkit expected
    (make_cars_devkit, 'devkit/cars_train_annos.mat', 'Stanford Cars'),
    (make_aircraft, 'data/images_variant_trainval.txt', 'FGVC-Aircraft'),
    (make_flowers, 'setid.mat', 'Oxford Flowers-102'),
    (make_pets, 'annotations/trainval.txt', 'Oxford-IIIT Pets'),
]


@pytest.mark.parametrize('make,rel,section', MISSING)
def test_missing_file_named_with_guide_section(tmp_path, make, rel,
                                              section):
    cfg = make(tmp_path / 'root')
    target = tmp_path / 'root' / rel
    if target.is_dir():
        import shutil
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError) as err:
        fd.check_dataset_root(cfg)
    msg = str(err.value)
    if rel == 'cars_annos.mat':  # mmpretrain then falls back to the devkit
        rel = 'devkit/cars_train_annos.mat'
    assert str(tmp_path / 'root' / rel) in msg
    _names_guide_section(msg, section)


def test_cifar_missing_never_downloads(tmp_path):
    (tmp_path / 'cifar100').mkdir()
    # download left at mmpretrain's default (True): the check stops first.
    cfg = dict(type='CIFAR100', data_root=str(tmp_path / 'cifar100'))
    with pytest.raises(FileNotFoundError) as err:
        fd.check_dataset_root(cfg)
    msg = str(err.value)
    assert str(tmp_path / 'cifar100' / 'cifar-100-python' / 'train') in msg
    _names_guide_section(msg, 'CIFAR-100')
    assert 'download=False' in msg


@pytest.mark.parametrize('name,make,script,section', [
    ('stanford_dogs', make_dogs, 'stanford_dogs.py', 'Stanford Dogs'),
    ('tiny', make_tiny, 'tiny_imagenet.py', 'Tiny-ImageNet')])
def test_unconverted_dataset_says_run_converter(tmp_path, name, make, script,
                                                section):
    root = tmp_path / name
    make(root)
    with pytest.raises(FileNotFoundError) as err:
        fd.check_dataset_root(custom_cfg(root))
    msg = str(err.value)
    assert str(root / 'meta' / 'train.txt') in msg
    assert f'python tools/dataset_converters/{script} {root}' in msg
    # What a user of the installed package runs (openmim finds the script
    # in the package's .mim/tools/ by its name).
    assert f'mim run figkd_mmrazor {script[:-3]} {root}' in msg
    _names_guide_section(msg, section)


def test_unparsable_cub_line(tmp_path):
    cfg = make_cub(tmp_path)
    path = tmp_path / 'images.txt'
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(' ', '\t', 1).replace('jpg', 'jpg extra')
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=re.escape(f'{path}, line 2')):
        fd.check_dataset_root(cfg)


def test_cub_split_values_and_id_mismatch(tmp_path):
    cfg = make_cub(tmp_path)
    split = tmp_path / 'train_test_split.txt'
    split.write_text(split.read_text().replace('3 1', '3 2'))
    with pytest.raises(ValueError, match=re.escape(f'{split}, line 3')):
        fd.check_dataset_root(cfg)
    split.write_text('\n'.join(split.read_text().splitlines()[:-1]
                               ).replace('3 2', '3 1') + '\n')
    with pytest.raises(ValueError, match=re.escape(
            'list different image ids; missing from train_test_split.txt: '
            'ids [6]')):
        fd.check_dataset_root(cfg)


@pytest.mark.parametrize('bad_line,reason', [
    ('Images/n02085620-Chihuahua/n02085620_0.jpg\t0', 'separated by a space'),
    ('', 'empty line'),
    ('Images/n02085620-Chihuahua/n02085620_0.jpg zero', 'invalid literal'),
    ('Images/n02085620-Chihuahua/n02085620_0.jpg 3', 'outside 0..2'),
])
def test_unparsable_custom_line(tmp_path, bad_line, reason):
    make_dogs(tmp_path)
    dogs_conv.convert(str(tmp_path))
    path = tmp_path / 'meta' / 'train.txt'
    lines = path.read_text().splitlines()
    lines[3] = bad_line
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError) as err:
        fd.check_dataset_root(custom_cfg(tmp_path))
    msg = str(err.value)
    assert f'{path}, line 4' in msg and reason in msg
    _names_guide_section(msg, 'Stanford Dogs')


def test_classes_path_is_not_under_data_root(tmp_path):
    make_dogs(tmp_path)
    dogs_conv.convert(str(tmp_path))
    cfg = dict(custom_cfg(tmp_path), classes='meta/classes.txt')
    with pytest.raises(FileNotFoundError, match='working directory'):
        fd.check_dataset_root(cfg)


def test_unknown_variant_and_bad_split(tmp_path):
    cfg = make_aircraft(tmp_path)
    with pytest.raises(ValueError, match="split='validation'"):
        fd.check_dataset_root(dict(cfg, split='validation'))
    path = tmp_path / 'data' / 'images_variant_trainval.txt'
    path.write_text(path.read_text() + '1000009 Boeing 7E7\n')
    with pytest.raises(ValueError, match=re.escape(
            f"{path}, line 5: cannot parse '1000009 Boeing 7E7' (unknown "
            "variant 'Boeing 7E7')")):
        fd.check_dataset_root(cfg)


def test_wrappers_config_and_unsupported_types(tmp_path):
    cfg = make_pets(tmp_path / 'pets')
    wrapped = dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset', datasets=[cfg, dict(cfg, split='test')]))
    fd.check_dataset_root(wrapped)
    fd.check_config(dict(train_dataloader=dict(dataset=wrapped),
                         val_dataloader=None))
    os.remove(tmp_path / 'pets' / 'annotations' / 'test.txt')
    with pytest.raises(FileNotFoundError, match='test.txt'):
        fd.check_config(dict(val_dataloader=dict(dataset=wrapped)))
    # Scoped type names are the same dataset; unknown types are left alone.
    with pytest.raises(FileNotFoundError):
        fd.check_dataset_root(dict(cfg, type='mmpretrain.OxfordIIITPet',
                                   split='test'))
    fd.check_dataset_root(dict(type='ImageNet', data_root=str(tmp_path / 'x')))


def test_check_images_names_missing_image(tmp_path):
    cfg = make_pets(tmp_path)
    missing = tmp_path / 'images' / 'Abyssinian_2.jpg'
    missing.unlink()
    fd.check_images(cfg, limit=2)  # only the first two samples: still fine
    with pytest.raises(FileNotFoundError) as err:
        fd.check_images(cfg)
    assert str(missing) in str(err.value) and '1 of 3' in str(err.value)


def test_relative_paths_as_in_configs(tmp_path, monkeypatch):
    """Configs say data_root='data/...', relative to the working dir."""
    monkeypatch.chdir(tmp_path)
    make_dogs(tmp_path / 'data' / 'stanford_dogs')
    make_cub(tmp_path / 'data' / 'CUB_200_2011')
    dogs_conv.convert('data/stanford_dogs')
    cfgs = [dict(type='CustomDataset', data_root='data/stanford_dogs',
                 ann_file='meta/val.txt', data_prefix='',
                 classes='data/stanford_dogs/meta/classes.txt'),
            dict(type='CUB', data_root='data/CUB_200_2011', split='test')]
    for cfg in cfgs:
        fd.check_dataset_root(cfg)
        fd.check_images(cfg)
        assert len(_build(cfg)) == 3
    with pytest.raises(FileNotFoundError, match=re.escape(
            'missing folder data/stanford_dogs/imgs')):
        fd.check_dataset_root(dict(cfgs[0], data_prefix='imgs'))


# ---------------------------------------------------- annotation content
# Each case corrupts one tiny official layout the way a careless edit would
# and checks that check_config (what tools/train.py runs before the Runner
# exists) refuses it with the file, the line and the fix.
LABEL_FIX = "make num_classes of the model head(s) the dataset's class count"
DUPLICATE_FIX = 'Remove one of the two lines'
LEAK_FIX = 'Remove it from one split'
EMPTY_FIX = 'has no samples'


def runner_cfg(train, held_out, num_classes=3, teacher_classes=None):
    """A runner config: plain, or with a teacher when teacher_classes."""
    head = dict(type='LinearClsHead', num_classes=num_classes)
    model = dict(type='ImageClassifier', head=head)
    if teacher_classes is not None:
        model = dict(type='SingleTeacherDistill', architecture=model,
                     teacher=dict(type='ImageClassifier', head=dict(
                         head, num_classes=teacher_classes)))
    return dict(model=model, train_dataloader=dict(dataset=train),
                val_dataloader=dict(dataset=held_out),
                test_dataloader=dict(dataset=held_out))


def _set_line(path, n, text):
    lines = Path(path).read_text().splitlines()
    lines[n - 1] = text
    Path(path).write_text(''.join(line + '\n' for line in lines))


def _line(path, n):
    return Path(path).read_text().splitlines()[n - 1]


def _refused(cfg, *expected, check=fd.check_config):
    with pytest.raises(ValueError) as err:
        check(cfg)
    msg = str(err.value)
    for text in expected:
        assert text in msg, f'{text!r} not in:\n{msg}'
    return msg


def _cub(tmp_path):
    cfg = make_cub(tmp_path)
    return cfg, dict(cfg, split='test')


# make_cub: ids 1, 3, 5 are train (classes 1, 2, 3), ids 2, 4, 6 test.
def test_cub_train_label_above_head(tmp_path):
    cfg = runner_cfg(*_cub(tmp_path))
    fd.check_config(cfg)  # the fake as made is fine
    labels = tmp_path / 'image_class_labels.txt'
    _set_line(labels, 3, '3 9')  # id 3: train
    _refused(cfg, f'{labels}, line 3', 'class id 9 (1-based) is label 8',
             'outside 0..2 (model.head.num_classes=3)', LABEL_FIX)


def test_cub_test_label_above_head_is_not_a_silent_miss(tmp_path):
    labels = tmp_path / 'image_class_labels.txt'
    cfg = runner_cfg(*_cub(tmp_path))
    _set_line(labels, 4, '4 4')  # id 4: test, read by val and test
    _refused(cfg, f'{labels}, line 4', 'label 3', 'outside 0..2')
    # The same file with a head of 4 classes is fine.
    fd.check_config(runner_cfg(*_cub(tmp_path), num_classes=4))


def test_cub_class_id_zero_is_refused_without_a_head(tmp_path):
    train, test = _cub(tmp_path)
    labels = tmp_path / 'image_class_labels.txt'
    _set_line(labels, 2, '2 0')
    _refused(test, f'{labels}, line 2', 'label -1', LABEL_FIX,
             check=fd.check_dataset_root)
    fd.check_dataset_root(train)  # id 2 is not read for training


def test_distillation_bounds_labels_by_the_smaller_head(tmp_path):
    cfg = runner_cfg(*_cub(tmp_path), num_classes=3, teacher_classes=2)
    _refused(cfg, f'{tmp_path / "image_class_labels.txt"}, line 5',
             'label 2', '0..1 (model.teacher.head.num_classes=2)')
    assert fd.head_num_classes(cfg) == (2, 'model.teacher.head.num_classes=2')
    cfg = runner_cfg(*_cub(tmp_path), num_classes=2, teacher_classes=3)
    assert fd.head_num_classes(cfg) == (
        2, 'model.architecture.head.num_classes=2')


@pytest.mark.parametrize('name', ['images.txt', 'image_class_labels.txt',
                                  'train_test_split.txt'])
def test_cub_duplicate_image_id(tmp_path, name):
    cfg = runner_cfg(*_cub(tmp_path))
    path = tmp_path / name
    # id 3 once more, with a value that parses: mmpretrain would keep it.
    value = {'images.txt': '001.x/extra.jpg', 'image_class_labels.txt': '1',
             'train_test_split.txt': '0'}[name]
    path.write_text(path.read_text() + f'3 {value}\n')
    _refused(cfg, f'{path}, line 7', 'image id 3 is given again',
             'first at line 3', 'Give every image its own id')


def test_cub_same_image_twice_in_a_split(tmp_path):
    cfg = runner_cfg(*_cub(tmp_path))
    images = tmp_path / 'images.txt'
    _set_line(images, 5, '5 ' + _line(images, 1).split()[1])  # both train
    msg = _refused(cfg, f'{images}, line 5', "split 'train'",
                   f'first at {images}, line 1', DUPLICATE_FIX)
    assert str(tmp_path / 'images' / _line(images, 1).split()[1]) in msg


def test_cub_test_id_pointing_at_a_training_image_is_a_leak(tmp_path):
    train, test = _cub(tmp_path)
    images = tmp_path / 'images.txt'
    _set_line(images, 2, '2 ' + _line(images, 1).split()[1])  # test -> train
    fd.check_dataset_root(test)  # each split alone is consistent
    _refused(runner_cfg(train, test),
             f'read for training ({images}, line 1)',
             f'for validation ({images}, line 2)', LEAK_FIX)


@pytest.mark.parametrize('flag,split', [('1', 'test'), ('0', 'train')])
def test_cub_empty_split(tmp_path, flag, split):
    cfg = runner_cfg(*_cub(tmp_path))
    path = tmp_path / 'train_test_split.txt'
    path.write_text(''.join(f'{i} {flag}\n' for i in range(1, 7)))
    other = '0' if flag == '1' else '1'
    _refused(cfg, f"split {split!r} {EMPTY_FIX}",
             f'no image id is marked {other} in train_test_split.txt',
             'Check that the annotation files are complete')


def _cars(tmp_path, rows=CARS_ROWS):
    cfg = make_cars(tmp_path, rows)
    return runner_cfg(cfg, dict(cfg, split='test'))


def _cars_rows(**changes):
    """CARS_ROWS with entry n (1-based) replaced by changes[f'e{n}']."""
    return [changes.get(f'e{n}', row) for n, row in enumerate(CARS_ROWS, 1)]


@pytest.mark.parametrize('rows,expected', [
    (_cars_rows(e2=('car_ims/000002.jpg', 4, 0)),
     ['entry 2', 'class id 4 (1-based) is label 3', LABEL_FIX]),
    (_cars_rows(e5=('car_ims/000005.jpg', 4, 1)),  # a test entry
     ['entry 5', 'label 3', 'outside 0..2']),
    (_cars_rows(e3=('car_ims/000003.jpg', 3, 2)),  # mmpretrain: both splits
     ['entry 3', 'test flag 2 is not 0 or 1']),
    (_cars_rows(e2=('car_ims/000001.jpg', 2, 0)),
     ['entry 2', "split 'train'", 'first at', 'entry 1', DUPLICATE_FIX]),
    (_cars_rows(e4=('car_ims/000001.jpg', 1, 1)),
     ['read for training', 'entry 1', 'for validation', 'entry 4',
      LEAK_FIX]),
    ([row[:2] + (0,) for row in CARS_ROWS],
     ["split 'test' has no samples", 'has test=1']),
], ids=['train-label', 'test-label', 'flag', 'duplicate', 'leak', 'empty'])
def test_stanford_cars_annos_content(tmp_path, rows, expected):
    _refused(_cars(tmp_path, rows), str(tmp_path / 'cars_annos.mat'),
             *expected)


def test_stanford_cars_devkit_content(tmp_path):
    cfg = make_cars_devkit(tmp_path)
    cfg = runner_cfg(cfg, dict(cfg, split='test'))
    fd.check_config(cfg)
    ann = tmp_path / 'devkit' / 'cars_test_annos_withlabels.mat'
    _mat_struct(ann, ('fname', 'class'), [('00001.jpg', 2), ('00002.jpg', 7)])
    _refused(cfg, f'{ann}, entry 2', 'class id 7', LABEL_FIX)
    _mat_struct(ann, ('fname', 'class'), [('00001.jpg', 2), ('00001.jpg', 3)])
    _refused(cfg, f'{ann}, entry 2', "split 'test'", DUPLICATE_FIX)
    _mat_struct(ann, ('fname', 'class'), [])
    _refused(cfg, "split 'test' has no samples", f'{ann} has no entries')


def _with_head(cfg, num_classes):
    return dict(cfg, model=dict(cfg['model'], head=dict(
        cfg['model']['head'], num_classes=num_classes)))


def test_fgvc_aircraft_content(tmp_path):
    cfg = make_aircraft(tmp_path)
    cfg = runner_cfg(cfg, dict(cfg, split='test'), num_classes=100)
    data = tmp_path / 'data'
    trainval = data / 'images_variant_trainval.txt'
    test = data / 'images_variant_test.txt'
    fd.check_config(cfg)
    # Variant names map to labels through mmpretrain's category list.
    labels = [FGVCAIRCRAFT_CATEGORIES.index(v) for v in AIRCRAFT]
    top = max(labels)
    first = 1 + [FGVCAIRCRAFT_CATEGORIES.index(' '.join(line.split()[1:]))
                 for line in trainval.read_text().splitlines()].index(top)
    _refused(_with_head(cfg, top), f'{trainval}, line '
             f'{first}', f'label {top}', f'0..{top - 1}', LABEL_FIX)

    original = trainval.read_text()
    trainval.write_text(original + _line(trainval, 2) + '\n')
    _refused(cfg, f'{trainval}, line 5',
             f'first at {trainval}, line 2', DUPLICATE_FIX)
    trainval.write_text(original)

    _set_line(test, 2, _line(trainval, 3))
    _refused(cfg, f'training ({trainval}, line 3)',
             f'validation ({test}, line 2)', LEAK_FIX)
    test.write_text('')
    _refused(cfg, "split 'test' has no samples",
             f'{test} is empty')


def test_oxford_pets_content(tmp_path):
    cfg = make_pets(tmp_path)
    cfg = runner_cfg(cfg, dict(cfg, split='test'), num_classes=37)
    trainval = tmp_path / 'annotations' / 'trainval.txt'
    test = tmp_path / 'annotations' / 'test.txt'
    fd.check_config(cfg)
    original = trainval.read_text()
    _set_line(trainval, 2, 'american_bulldog_1 38 2 1')
    _refused(cfg, f'{trainval}, line 2', 'class id 38 (1-based) is label 37',
             '0..36 (model.head.num_classes=37)', LABEL_FIX)
    trainval.write_text(original + 'Abyssinian_1 1 1 1\n')
    _refused(cfg, f'{trainval}, line 4', f'first at {trainval}, line 1',
             DUPLICATE_FIX)
    trainval.write_text(original)
    test.write_text(original.splitlines()[2] + '\n')
    _refused(cfg, f'training ({trainval}, line 3)',
             f'validation ({test}, line 1)', LEAK_FIX)
    test.write_text('')
    _refused(cfg, "split 'test' has no samples", f'{test} is empty')


@pytest.mark.parametrize('kwargs,expected', [
    (dict(labels=(4, 2, 3, 1, 2, 3, 1, 2)),
     ['imagelabels.mat, entry 1', 'class id 4 (1-based) is label 3',
      LABEL_FIX]),
    (dict(trnid=(1, 0)),  # mmpretrain: labels[-1], the last image's label
     ['setid.mat, trnid entry 2', 'image number 0 is not in 1..8']),
    (dict(tstid=(5, 6, 7, 9)),
     ['setid.mat, tstid entry 4', 'image number 9 is not in 1..8']),
    (dict(valid=(3, 1)),  # trainval = trnid + valid
     ['setid.mat, valid entry 2', 'first at', 'setid.mat, trnid entry 1',
      DUPLICATE_FIX]),
    (dict(tstid=(5, 6, 2, 8)),
     ['training (', 'setid.mat, trnid entry 2', 'validation (',
      'setid.mat, tstid entry 3', LEAK_FIX]),
    (dict(tstid=()), ["split 'test' has no samples", 'tstid in',
                      'setid.mat are empty']),
], ids=['label', 'zero', 'too-high', 'duplicate', 'leak', 'empty'])
def test_flowers102_content(tmp_path, kwargs, expected):
    cfg = make_flowers(tmp_path, **kwargs)
    # Every .mat named in the message is named with its full path.
    expected = [e.replace('setid.mat', str(tmp_path / 'setid.mat')).replace(
        'imagelabels.mat', str(tmp_path / 'imagelabels.mat'))
        for e in expected]
    _refused(runner_cfg(cfg, dict(cfg, split='test')), *expected)


def test_cifar100_class_count_and_split(tmp_path):
    cfg, _ = make_cifar100(tmp_path)
    test = dict(cfg, split='test')
    fd.check_config(runner_cfg(cfg, test, num_classes=100))
    _refused(runner_cfg(cfg, test, num_classes=10),
             'CIFAR-100 labels are 0..99 but model.head.num_classes=10',
             'Set it to 100')
    batch = tmp_path / 'cifar-100-python' / 'train'
    _refused(runner_cfg(cfg, cfg, num_classes=100),
             f'read for training ({batch}, all images)', LEAK_FIX)


def _dogs(tmp_path):
    make_dogs(tmp_path)
    dogs_conv.convert(str(tmp_path))
    return runner_cfg(custom_cfg(tmp_path, 'train'),
                      custom_cfg(tmp_path, 'val'))


def test_custom_label_bounded_by_head_and_classes_file(tmp_path):
    cfg = _dogs(tmp_path)
    fd.check_config(cfg)
    train = tmp_path / 'meta' / 'train.txt'
    _set_line(train, 2, _line(train, 2)[:-1] + '2')
    _refused(_with_head(cfg, 2), f'{train}, line 2', 'label 2',
             '0..1 (model.head.num_classes=2)', LABEL_FIX)
    # A head wider than classes.txt: the classes file bounds the labels.
    _set_line(train, 2, _line(train, 2)[:-1] + '3')
    _refused(_with_head(cfg, 120), f'{train}, line 2', 'label 3',
             '0..2 (the config names 3 classes)', 'Stanford Dogs')


def test_custom_duplicate_leak_and_empty(tmp_path):
    cfg = _dogs(tmp_path)
    train = tmp_path / 'meta' / 'train.txt'
    val = tmp_path / 'meta' / 'val.txt'
    original = train.read_text()
    train.write_text(original + _line(train, 4) + '\n')
    _refused(cfg, f'{train}, line 7', f'first at {train}, line 4',
             DUPLICATE_FIX, 'Stanford Dogs')
    train.write_text(original)
    _set_line(val, 3, _line(train, 6))
    _refused(cfg, f'training ({train}, line 6)', f'validation ({val}, line 3)',
             LEAK_FIX)
    val.write_text('')
    _refused(cfg, "split 'meta/val.txt' has no samples", f'{val} is empty')


def test_tiny_imagenet_label_and_leak(tmp_path):
    make_tiny(tmp_path)
    tiny_conv.convert(str(tmp_path))
    train = tmp_path / 'meta' / 'train.txt'
    val = tmp_path / 'meta' / 'val.txt'
    cfg = runner_cfg(custom_cfg(tmp_path, 'train'),
                     custom_cfg(tmp_path, 'val'), num_classes=3)
    fd.check_config(cfg)
    _set_line(val, 1, _line(train, 1))
    _refused(cfg, f'training ({train}, line 1)', f'validation ({val}, line 1)',
             'Tiny-ImageNet')
    cfg['model']['head']['num_classes'] = 200
    _set_line(val, 1, 'val/images/val_0.JPEG 5')
    _refused(cfg, f'{val}, line 1', 'label 5', '(the config names 3 classes)')


def test_custom_folder_mode_class_count(tmp_path):
    for name in ('a', 'b', 'c'):
        _img(tmp_path / 'train' / name / 'x.jpg')
    folder = dict(type='CustomDataset', data_root=str(tmp_path),
                  data_prefix='train')
    fd.check_config(runner_cfg(folder, folder, num_classes=3))
    _refused(runner_cfg(folder, None, num_classes=2), '3 class folders',
             'model.head.num_classes=2')
    (tmp_path / 'empty').mkdir()
    _refused(runner_cfg(dict(folder, data_prefix='empty'), None),
             'has no class folders')


def test_leak_and_labels_found_through_dataset_wrappers(tmp_path):
    train, test = _cub(tmp_path)
    images = tmp_path / 'images.txt'
    _set_line(images, 6, '6 ' + _line(images, 3).split()[1])  # test -> train
    wrapped = dict(type='RepeatDataset', times=3, dataset=dict(
        type='ConcatDataset', datasets=[dict(type='ImageNet'), train]))
    _refused(runner_cfg(wrapped, dict(type='ClassBalancedDataset',
                                      oversample_thr=0.1, dataset=test)),
             f'training ({images}, line 3)', f'validation ({images}, line 6)')
    _set_line(images, 6, '6 x/6.jpg')
    _set_line(tmp_path / 'image_class_labels.txt', 5, '5 7')
    _refused(runner_cfg(wrapped, test), 'image_class_labels.txt, line 5',
             'label 6')


def test_testing_checks_only_the_test_loader(tmp_path):
    train, test = _cub(tmp_path)
    cfg = runner_cfg(dict(train, data_root=str(tmp_path / 'absent')), test)
    with pytest.raises(FileNotFoundError):
        fd.check_config(cfg)
    fd.check_config(cfg, loaders=('test_dataloader',))
    _set_line(tmp_path / 'image_class_labels.txt', 4, '4 4')
    _refused(cfg, 'image_class_labels.txt, line 4',
             check=lambda c: fd.check_config(c, loaders=('test_dataloader',)))


def test_train_refuses_a_bad_label_before_the_work_dir_exists(tmp_path):
    """End to end, as a user runs it: nothing is created in the work dir."""
    from tiny import run_tool, tiny_config, tiny_cub

    data = tiny_cub(tmp_path / 'cub', num_classes=4)
    train_id = next(line.split()[0] for line in
                    (data / 'train_test_split.txt').read_text().splitlines()
                    if line.split()[1] == '1')
    labels = data / 'image_class_labels.txt'
    n = 1 + [line.split()[0] for line in
             labels.read_text().splitlines()].index(train_id)
    _set_line(labels, n, f'{train_id} 9')
    cfg = tiny_config('configs/baselines/cub_r18.py', data, tmp_path / 'c.py')
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, check=False)
    assert proc.returncode != 0
    assert 'ValueError' in proc.stderr
    assert f'{labels}, line {n}: class id 9 (1-based) is label 8' in \
        proc.stderr
    assert '(model.head.num_classes=4)' in proc.stderr
    assert not work.exists()
