"""Start-up checks for the dataset folders the recipes read.

mmpretrain's dataset classes fail late and tersely on a wrongly laid out
dataset: a bare ``AssertionError`` about split files, an ``int()`` error from
a stray line, or, for CIFAR, an attempt to download. :func:`check_dataset_root`
runs before any loader starts and names the missing file or bad line, the
dataset, and the section of ``docs/datasets.md`` that says where to get the
dataset and how to lay it out.

Paths are resolved as mmengine's ``BaseDataset`` resolves them (relative
``ann_file``/``data_prefix`` joined to ``data_root``), but only for local
folders: a remote ``data_root`` (``s3://...``) is left to mmpretrain.
Nothing here imports torch; mmpretrain and scipy are imported only when a
check needs them.
"""
import os
import os.path as osp

DOCS = 'docs/datasets.md'

# mmpretrain type -> (name used in messages, docs/datasets.md anchor)
_DATASETS = {
    'CUB': ('CUB-200-2011', 'cub-200-2011'),
    'StanfordCars': ('Stanford Cars', 'stanford-cars'),
    'FGVCAircraft': ('FGVC-Aircraft', 'fgvc-aircraft'),
    'OxfordIIITPet': ('Oxford-IIIT Pets', 'oxford-iiit-pets'),
    'Flowers102': ('Oxford Flowers-102', 'oxford-flowers-102'),
    'CIFAR100': ('CIFAR-100', 'cifar-100'),
    'CustomDataset': ('CustomDataset', 'customdataset-annotation-files'),
}
# Datasets read through CustomDataset after a converter wrote meta/*.txt,
# recognised by an entry of their official release inside data_root.
_CONVERTED = (
    ('Images', 'Stanford Dogs', 'stanford-dogs', 'stanford_dogs.py'),
    ('wnids.txt', 'Tiny-ImageNet', 'tiny-imagenet', 'tiny_imagenet.py'),
)
SUPPORTED_TYPES = tuple(_DATASETS)


def _type_name(cfg):
    """'CUB', also for 'mmpretrain.CUB' or a class given as ``type=CUB``."""
    t = cfg.get('type', '')
    t = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return t.rsplit('.', 1)[-1]


def _leaves(cfg):
    """The dataset configs inside wrappers (RepeatDataset, ConcatDataset)."""
    if isinstance(cfg.get('dataset'), dict):
        yield from _leaves(cfg['dataset'])
    elif isinstance(cfg.get('datasets'), (list, tuple)):
        for sub in cfg['datasets']:
            yield from _leaves(sub)
    else:
        yield cfg


class _Check:
    """One dataset config: resolves its paths and words its errors."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.type = _type_name(cfg)
        self.name, self.anchor = _DATASETS[self.type]
        self.root = cfg.get('data_root') or ''
        self.hint = ''  # extra advice placed before the docs pointer

    def split(self, default, allowed):
        split = self.cfg.get('split', default)
        if split not in allowed:
            raise self.bad(f'split={split!r} is not one of {list(allowed)}')
        return split

    def path(self, rel):
        return rel if osp.isabs(rel) or not self.root else osp.join(
            self.root, rel)

    def need(self, rel, kind='file', join=True):
        path = self.path(rel) if join else rel
        if not (osp.isdir if kind == 'folder' else osp.isfile)(path):
            raise FileNotFoundError(self.say(f'missing {kind} {path}'))
        return path

    def bad(self, msg):
        return ValueError(self.say(msg))

    def say(self, msg):
        where = f"dataset type {self.type!r}, data_root {self.root!r}"
        return (f'{self.name} ({where}): {msg}. {self.hint}See '
                f'{DOCS}#{self.anchor} for where to get {self.name} and how '
                'to lay it out.')

    def lines(self, rel, parse, join=True):
        """parse(line) for each line, read as mmengine's list_from_file does.

        A blank line is an error too: mmpretrain would choke on it.
        """
        path = self.need(rel, join=join)
        out = []
        with open(path, encoding='utf-8') as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip('\r\n')
                try:
                    if not line.strip():
                        raise ValueError('empty line')
                    out.append(parse(line))
                except ValueError as err:
                    raise self.bad(f'{path}, line {n}: cannot parse '
                                   f'{line!r} ({err})') from None
        return out

    def mat_vars(self, rel, names):
        """Check a MATLAB file holds ``names`` without loading it."""
        from scipy.io import whosmat

        path = self.need(rel)
        try:
            found = {name for name, _, _ in whosmat(path)}
        except Exception as err:  # scipy raises several types for bad files
            raise self.bad(f'cannot read {path} as a MATLAB file ({err})')
        missing = sorted(set(names) - found)
        if missing:
            raise self.bad(f'{path} has no variable {missing}; found '
                           f'{sorted(found)}')


def _id_value(line, value=str):
    fields = line.split()
    if len(fields) != 2:
        raise ValueError(f'expected "<image id> <value>", got '
                         f'{len(fields)} fields')
    return int(fields[0]), value(fields[1])


def _one_based(text):
    if int(text) < 1:
        raise ValueError(f'class id {text} is not >= 1')
    return int(text)


def _zero_or_one(text):
    if text not in ('0', '1'):
        raise ValueError(f'is_training_image must be 0 or 1, not {text!r}')
    return text


def _check_cub(c):
    c.split('train', ('train', 'test'))
    c.need('images', 'folder')
    ids = [dict(c.lines('images.txt', _id_value)),
           dict(c.lines('image_class_labels.txt',
                        lambda line: _id_value(line, _one_based))),
           dict(c.lines('train_test_split.txt',
                        lambda line: _id_value(line, _zero_or_one)))]
    if not ids[0].keys() == ids[1].keys() == ids[2].keys():
        raise c.bad('images.txt, image_class_labels.txt and '
                    'train_test_split.txt list different image ids')


def _check_cars(c):
    split = c.split('train', ('train', 'test'))
    # mmpretrain takes cars_annos.mat (+ car_ims/) when it exists, else the
    # devkit layout; check the one it will take.
    if osp.isfile(c.path('cars_annos.mat')):
        c.need('car_ims', 'folder')
        c.mat_vars('cars_annos.mat', ['annotations'])
        return
    c.hint = ('Stanford Cars comes in two official layouts: car_ims/ with '
              'cars_annos.mat, or cars_train/ + cars_test/ + devkit/ (test '
              'labels: the separately released '
              'cars_test_annos_withlabels.mat). ')
    if split == 'train':
        ann, images = 'devkit/cars_train_annos.mat', 'cars_train'
    else:
        ann, images = 'devkit/cars_test_annos_withlabels.mat', 'cars_test'
    c.need(ann)
    c.need(images, 'folder')
    c.mat_vars(ann, ['annotations'])


def _check_aircraft(c):
    split = c.split('trainval', ('train', 'val', 'trainval', 'test'))
    c.need('data/images', 'folder')
    # mmpretrain maps variant names with list.index(): an unknown name would
    # surface as "'X' is not in list" with no file or line.
    from mmpretrain.datasets.categories import FGVCAIRCRAFT_CATEGORIES

    def parse(line):
        fields = line.split()
        if len(fields) < 2:
            raise ValueError('expected "<image id> <variant>"')
        variant = ' '.join(fields[1:])
        if variant not in FGVCAIRCRAFT_CATEGORIES:
            raise ValueError(f'unknown variant {variant!r}')

    c.lines(f'data/images_variant_{split}.txt', parse)


def _check_pets(c):
    split = c.split('trainval', ('trainval', 'test'))
    c.need('images', 'folder')

    def parse(line):
        fields = line.split()
        if len(fields) != 4:
            raise ValueError('expected "<image> <class id> <species> '
                             f'<breed id>", got {len(fields)} fields')
        _one_based(fields[1])

    c.lines(f'annotations/{split}.txt', parse)


def _check_flowers(c):
    c.split('trainval', ('train', 'val', 'trainval', 'test'))
    c.need('jpg', 'folder')
    c.mat_vars('imagelabels.mat', ['labels'])
    c.mat_vars('setid.mat', ['trnid', 'valid', 'tstid'])


def _check_cifar100(c):
    c.split('train', ('train', 'test'))
    prefix = c.cfg.get('data_prefix') or ''
    c.root = c.path(prefix) if prefix else c.root
    # mmpretrain's CIFAR downloads whenever these are missing (download=True
    # is its default); failing here keeps a training start offline.
    c.hint = ('Extract the official cifar-100-python.tar.gz under data_root '
              'and set download=False in the dataset config. ')
    for name in ('train', 'test'):  # its integrity check needs both splits
        c.need(f'cifar-100-python/{name}')


def _num_classes(c):
    """Number of classes the config names, or None to skip the range check."""
    classes = c.cfg.get('classes')
    if classes is None:
        classes = (c.cfg.get('metainfo') or {}).get('classes')
    if classes is None:
        return None
    if isinstance(classes, str):
        # mmengine/mmpretrain read this path as given, NOT under data_root,
        # and metainfo silently keeps a missing path as a class-name string.
        if not osp.isfile(classes):
            raise FileNotFoundError(c.say(
                f'missing classes file {classes} (a classes path is relative '
                'to the working directory, not to data_root)'))
        return len(c.lines(classes, lambda line: line, join=False))
    return len(classes)


def _check_custom(c):
    for entry, name, anchor, script in _CONVERTED:
        if c.root and osp.exists(osp.join(c.root, entry)):
            c.name, c.anchor = name, anchor
            c.hint = ('Its meta/*.txt files are generated from the official '
                      'release by `python tools/dataset_converters/'
                      f'{script} {c.root}`. ')
    prefix = c.cfg.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    if prefix:  # else the images are under data_root, already checked
        c.need(prefix, 'folder')
    ann_file = c.cfg.get('ann_file') or ''
    if not ann_file:
        return  # folder mode: mmpretrain itself names an empty folder
    c.need(ann_file)
    if not c.cfg.get('with_label', True):
        c.lines(ann_file, lambda line: line)
        return
    num_classes = _num_classes(c)

    def parse(line):
        # Exactly mmpretrain's split: paths may hold spaces, not tabs.
        fields = line.strip().rsplit(' ', 1)
        if len(fields) != 2:
            raise ValueError('expected "<image path> <label>" separated by '
                             'a space')
        label = int(fields[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            top = '' if num_classes is None else num_classes - 1
            raise ValueError(f'label {label} is outside 0..{top}')

    c.lines(ann_file, parse)


_CHECKS = {
    'CUB': _check_cub,
    'StanfordCars': _check_cars,
    'FGVCAircraft': _check_aircraft,
    'OxfordIIITPet': _check_pets,
    'Flowers102': _check_flowers,
    'CIFAR100': _check_cifar100,
    'CustomDataset': _check_custom,
}


def _checkable(dataset_cfg):
    """The leaf configs of a type we know, on a local (stat-able) root."""
    for cfg in _leaves(dataset_cfg):
        if (_type_name(cfg) in _CHECKS
                and '://' not in str(cfg.get('data_root') or '')):
            yield cfg


def check_dataset_root(dataset_cfg):
    """Check that the files mmpretrain reads for ``dataset_cfg`` are there.

    ``dataset_cfg`` is a dataset config dict as in mmpretrain configs
    (``type``, ``data_root``, ``split`` or ``ann_file``/``data_prefix``...);
    wrappers (``dataset=``/``datasets=``) are looked through. Types outside
    :data:`SUPPORTED_TYPES` and remote data roots are not checked.

    Raises:
        FileNotFoundError: a file or folder is missing; the message names it,
            the dataset and the docs/datasets.md section to follow.
        ValueError: a bad split, an annotation line that does not parse (file
            and line number in the message) or an unreadable .mat file.
    """
    for cfg in _checkable(dataset_cfg):
        c = _Check(cfg)
        if c.root and not osp.isdir(c.root):
            raise FileNotFoundError(
                c.say(f'data_root folder {c.root} does not exist'))
        _CHECKS[c.type](c)


def check_config(cfg):
    """:func:`check_dataset_root` for the train/val/test dataloaders of a
    runner config (those it has)."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key) or {}
        if loader.get('dataset'):
            check_dataset_root(loader['dataset'])


def check_images(dataset_cfg, limit=None):
    """Check the image files the dataset lists exist and are readable.

    Slower than :func:`check_dataset_root` (it builds the mmpretrain dataset
    to get the exact paths), hence separate and optional; ``limit`` checks
    only the first ``limit`` samples of each dataset. CIFAR-100 keeps its
    images inside its batch files, so it has nothing to check here.
    """
    check_dataset_root(dataset_cfg)
    import mmpretrain.datasets  # noqa: F401  (registers the dataset types)
    from mmpretrain.registry import DATASETS

    for cfg in _checkable(dataset_cfg):
        if _type_name(cfg) == 'CIFAR100':
            continue
        dataset = DATASETS.build(dict(cfg, pipeline=[]))
        count = len(dataset) if limit is None else min(limit, len(dataset))
        paths = (dataset.get_data_info(i)['img_path'] for i in range(count))
        bad = [p for p in paths
               if not (osp.isfile(p) and os.access(p, os.R_OK))]
        if bad:
            c = _Check(cfg)
            raise FileNotFoundError(c.say(
                f'{len(bad)} of {count} listed images are missing or '
                f'unreadable, first {bad[0]}'))
