"""Start-up checks for the dataset folders and annotations the recipes read.

mmpretrain's dataset classes fail late and tersely on a wrongly laid out
dataset (a bare ``AssertionError`` about split files, an ``int()`` error from
a stray line, for CIFAR an attempt to download), and some annotation mistakes
do not fail at all: a label above the head's class count crashes mid-epoch
without a file or line, a duplicated CUB image id silently replaces another,
an image listed for training and for testing inflates the score.

:func:`check_config` runs before the Runner exists. For every dataset a
dataloader of the config reads, it checks that the files are there and reads
the annotations as the mmpretrain class will read them (same files, same
splitting of lines, same label arithmetic), then refuses, naming the file and
line:

* a label outside ``0..num_classes-1``, ``num_classes`` taken from the
  model's classification head(s);
* an image listed twice in one split (or a CUB image id given twice);
* an image read for training and for validation or testing (a leak);
* a split with no samples.

Paths are resolved as mmengine's ``BaseDataset`` resolves them (relative
``ann_file``/``data_prefix`` joined to ``data_root``), but only for local
folders: a remote ``data_root`` (``s3://...``) is left to mmpretrain.
Nothing here imports torch; mmpretrain and scipy are imported only when a
check needs them. Messages name the section of the dataset guide
(``docs/datasets.md``; see :mod:`figkd_mmrazor.guides`).
"""
import itertools
import os
import os.path as osp

from .guides import guide_anchor, guide_path

# mmpretrain type -> (name used in messages, section of the dataset guide)
_DATASETS = {
    'CUB': ('CUB-200-2011', 'CUB-200-2011'),
    'StanfordCars': ('Stanford Cars', 'Stanford Cars'),
    'FGVCAircraft': ('FGVC-Aircraft', 'FGVC-Aircraft'),
    'OxfordIIITPet': ('Oxford-IIIT Pets', 'Oxford-IIIT Pets'),
    'Flowers102': ('Oxford Flowers-102', 'Oxford Flowers-102'),
    'CIFAR100': ('CIFAR-100', 'CIFAR-100'),
    'CustomDataset': ('CustomDataset', 'CustomDataset annotation files'),
}
# Datasets read through CustomDataset after a converter wrote meta/*.txt,
# recognised by an entry of their official release inside data_root:
# (entry, name and guide section, converter script).
_CONVERTED = (
    ('Images', 'Stanford Dogs', 'stanford_dogs.py'),
    ('wnids.txt', 'Tiny-ImageNet', 'tiny_imagenet.py'),
)
SUPPORTED_TYPES = tuple(_DATASETS)
CIFAR100_CLASSES = 100
# What each dataloader is read for, in messages.
_ROLES = {'train_dataloader': 'training', 'val_dataloader': 'validation',
          'test_dataloader': 'testing'}


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


def _where(place):
    """'file, line 3' for text files, 'file, entry 3' for MATLAB files."""
    path, n = place
    if isinstance(n, str):
        return f'{path}, {n}'
    return f'{path}, {"entry" if path.endswith(".mat") else "line"} {n}'


def head_num_classes(cfg):
    """``(num_classes, 'key=value')`` of the narrowest classification head.

    Plain configs: ``model.head``; distillation configs:
    ``model.architecture.head`` and ``model.teacher.head`` (the teacher is
    scored on the same labels). None if no head names ``num_classes``.
    """
    model = cfg.get('model') or {}
    found = []
    for key in ('', 'architecture', 'teacher'):
        sub = model.get(key) if key else model
        head = sub.get('head') if isinstance(sub, dict) else None
        if isinstance(head, dict) and isinstance(head.get('num_classes'),
                                                 int):
            path = '.'.join(filter(None, ('model', key, 'head.num_classes')))
            found.append((head['num_classes'],
                          f"{path}={head['num_classes']}"))
    return min(found) if found else None


class _Check:
    """One dataset config: resolves its paths, reads it, words its errors.

    ``bound`` is ``(num_classes, 'what says so')`` or None.
    """

    def __init__(self, cfg, bound=None):
        self.cfg = cfg
        self.type = _type_name(cfg)
        self.name, self.section = _DATASETS[self.type]
        self.root = cfg.get('data_root') or ''
        self.hint = ''  # extra advice placed before the guide pointer
        self.bound = bound
        self.split_name = cfg.get('split')

    def split(self, default, allowed):
        split = self.cfg.get('split', default)
        if split not in allowed:
            raise self.bad(f'split={split!r} is not one of {list(allowed)}')
        self.split_name = split
        return split

    def path(self, rel):
        return rel if osp.isabs(rel) or not self.root else osp.join(
            self.root, rel)

    def images(self, *prefix):
        """``key(rel)``: an image's absolute path, as the dataset joins it.

        Joined by hand: this runs once per annotation line.
        """
        base = osp.join(osp.abspath(osp.join(self.root, *prefix)), '')
        return lambda rel: rel if rel.startswith('/') else base + rel

    def need(self, rel, kind='file', join=True):
        path = self.path(rel) if join else rel
        if not (osp.isdir if kind == 'folder' else osp.isfile)(path):
            raise FileNotFoundError(self.say(f'missing {kind} {path}'))
        return path

    def bad(self, msg):
        return ValueError(self.say(msg))

    def say(self, msg):
        where = f"dataset type {self.type!r}, data_root {self.root!r}"
        return (f'{self.name} ({where}): {msg}. {self.hint}See the section '
                f'"{self.section}" of the figkd_mmrazor dataset guide '
                f'({guide_path("datasets.md")}#'
                f'{guide_anchor(self.section)}) for where to get '
                f'{self.name} and how to lay it out.')

    def lines(self, rel, parse, join=True):
        """``parse(line), line number`` for each line, read as mmengine's
        ``list_from_file`` reads it.

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
                    out.append((parse(line), (path, n)))
                except ValueError as err:
                    raise self.bad(f'{path}, line {n}: cannot parse '
                                   f'{line!r} ({err})') from None
        return out

    def id_lines(self, rel, value):
        """CUB's "<image id> <value>" files as ``{id: (value, place)}``.

        mmpretrain keeps them in a dict: a repeated id silently replaces the
        first line, so it is an error here.
        """
        out = {}
        for (image_id, item), place in self.lines(
                rel, lambda line: _id_value(line, value)):
            if image_id in out:
                raise self.bad(
                    f'{_where(place)}: image id {image_id} is given again '
                    f'(first at line {out[image_id][1][1]}); mmpretrain would '
                    'keep only the last line. Give every image its own id')
            out[image_id] = (item, place)
        return out

    def mat(self, rel, names):
        """The variables ``names`` of a MATLAB file (squeezed arrays)."""
        from scipy.io import loadmat

        path = self.need(rel)
        try:
            data = loadmat(path, squeeze_me=True, variable_names=names)
        except Exception as err:  # scipy raises several types for bad files
            raise self.bad(f'cannot read {path} as a MATLAB file ({err})')
        missing = sorted(set(names) - set(data))
        if missing:
            raise self.bad(f'{path} has no variable {missing}')
        return path, data

    def empty(self, why):
        return self.bad(f'split {self.split_name!r} has no samples: {why}. '
                        'Check that the annotation files are complete and '
                        'that the config names the intended split')


def _id_value(line, value=str):
    fields = line.split()
    if len(fields) != 2:
        raise ValueError(f'expected "<image id> <value>", got '
                         f'{len(fields)} fields')
    return int(fields[0]), value(fields[1])


def _zero_or_one(text):
    # mmpretrain keeps an id out of a split only for exactly '1' or '0': any
    # other flag puts the image into both splits.
    if text not in ('0', '1'):
        raise ValueError(f'is_training_image must be 0 or 1, not {text!r}')
    return text


# Each reader returns the samples the dataset class will produce, as
# ``(image key, label or None, place of the image, place of the label)``, a
# place being ``(file, line or entry number)``, or None where the samples
# cannot be listed cheaply; and the reason an empty list would be empty.

def _read_cub(c):
    split = c.split('train', ('train', 'test'))
    c.need('images', 'folder')
    paths = c.id_lines('images.txt', str)
    labels = c.id_lines('image_class_labels.txt', int)
    flags = c.id_lines('train_test_split.txt', _zero_or_one)
    if not paths.keys() == labels.keys() == flags.keys():
        files = {'images.txt': paths, 'image_class_labels.txt': labels,
                 'train_test_split.txt': flags}
        every = set().union(*(d.keys() for d in files.values()))
        lacking = {f: sorted(every - d.keys())[:3] for f, d in files.items()
                   if every - d.keys()}
        raise c.bad('images.txt, image_class_labels.txt and '
                    'train_test_split.txt list different image ids; missing '
                    + '; '.join(f'from {f}: ids {ids}'
                                for f, ids in lacking.items()))
    wanted = '1' if split == 'train' else '0'
    image = c.images('images')
    samples = [(image(path), labels[i][0] - 1, place, labels[i][1])
               for i, (path, place) in paths.items() if flags[i][0] == wanted]
    return samples, f'no image id is marked {wanted} in train_test_split.txt'


def _mat_records(c, rel, fields):
    """A MATLAB struct array as a list of per-entry field tuples."""
    import numpy as np

    path, data = c.mat(rel, ['annotations'])
    records = np.atleast_1d(data['annotations'])
    missing = [f for f in fields if f not in (records.dtype.names or ())]
    if missing:
        raise c.bad(f'{path}: annotations have no field {missing}')
    columns = [np.atleast_1d(records[f]) for f in fields]
    return path, list(zip(*columns))


def _read_cars(c):
    split = c.split('train', ('train', 'test'))
    # mmpretrain takes cars_annos.mat (+ car_ims/) when it exists, else the
    # devkit layout; read the one it will take.
    if osp.isfile(c.path('cars_annos.mat')):
        c.need('car_ims', 'folder')
        path, rows = _mat_records(c, 'cars_annos.mat',
                                  ('relative_im_path', 'class', 'test'))
        for n, (_, _, test) in enumerate(rows, 1):
            if int(test) not in (0, 1):  # mmpretrain: both splits
                raise c.bad(f'{_where((path, n))}: test flag {test} is not '
                            '0 or 1')
        wanted = int(split == 'test')
        places = ((path, n) for n in range(1, len(rows) + 1))
        image = c.images()
        samples = [(image(rel), int(cls) - 1, place, place)
                   for (rel, cls, test), place in zip(rows, places)
                   if int(test) == wanted]
        return samples, f'no entry of {path} has test={wanted}'
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
    path, rows = _mat_records(c, ann, ('fname', 'class'))
    image = c.images(images)
    samples = [(image(name), int(cls) - 1, (path, n), (path, n))
               for n, (name, cls) in enumerate(rows, 1)]
    return samples, f'{path} has no entries'


def _read_aircraft(c):
    split = c.split('trainval', ('train', 'val', 'trainval', 'test'))
    c.need('data/images', 'folder')
    # mmpretrain maps variant names with list.index(): an unknown name would
    # surface as "'X' is not in list" with no file or line.
    from mmpretrain.datasets.categories import FGVCAIRCRAFT_CATEGORIES
    index = {name: i for i, name in enumerate(FGVCAIRCRAFT_CATEGORIES)}
    image = c.images('data', 'images')

    def parse(line):
        fields = line.split()
        if len(fields) < 2:
            raise ValueError('expected "<image id> <variant>"')
        variant = ' '.join(fields[1:])
        if variant not in index:
            raise ValueError(f'unknown variant {variant!r}')
        return image(f'{fields[0]}.jpg'), index[variant]

    ann = f'data/images_variant_{split}.txt'
    samples = [(key, label, place, place)
               for (key, label), place in c.lines(ann, parse)]
    return samples, f'{c.path(ann)} is empty'


def _read_pets(c):
    split = c.split('trainval', ('trainval', 'test'))
    c.need('images', 'folder')
    image = c.images('images')

    def parse(line):
        fields = line.split()
        if len(fields) != 4:
            raise ValueError('expected "<image> <class id> <species> '
                             f'<breed id>", got {len(fields)} fields')
        return image(f'{fields[0]}.jpg'), int(fields[1]) - 1

    ann = f'annotations/{split}.txt'
    samples = [(key, label, place, place)
               for (key, label), place in c.lines(ann, parse)]
    return samples, f'{c.path(ann)} is empty'


def _read_flowers(c):
    split = c.split('trainval', ('train', 'val', 'trainval', 'test'))
    c.need('jpg', 'folder')
    labels_path, data = c.mat('imagelabels.mat', ['labels'])
    import numpy as np
    labels = np.atleast_1d(data['labels']).tolist()
    names = {'train': ['trnid'], 'val': ['valid'], 'test': ['tstid'],
             'trainval': ['trnid', 'valid']}[split]
    ids_path, ids = c.mat('setid.mat', ['trnid', 'valid', 'tstid'])
    image_file = c.images('jpg')
    samples = []
    for name in names:
        for n, image in enumerate(np.atleast_1d(ids[name]).tolist(), 1):
            place = (ids_path, f'{name} entry {n}')
            # mmpretrain reads labels[image - 1]: 0 would wrap to the last.
            if not 1 <= image <= len(labels):
                raise c.bad(f'{_where(place)}: image number {image} is not '
                            f'in 1..{len(labels)}, the images labelled in '
                            f'{labels_path}')
            samples.append((image_file('image_%05d.jpg' % image),
                            int(labels[image - 1]) - 1, place,
                            (labels_path, image)))
    return samples, f'{" and ".join(names)} in {ids_path} are empty'


def _read_cifar100(c):
    split = c.split('train', ('train', 'test'))
    prefix = c.cfg.get('data_prefix') or ''
    c.root = c.path(prefix) if prefix else c.root
    # mmpretrain's CIFAR downloads whenever these are missing (download=True
    # is its default); failing here keeps a training start offline.
    c.hint = ('Extract the official cifar-100-python.tar.gz under data_root '
              'and set download=False in the dataset config. ')
    for name in ('train', 'test'):  # its integrity check needs both splits
        c.need(f'cifar-100-python/{name}')
    # mmpretrain refuses batch files whose md5 is not the official one, so
    # their labels are 0..99 and train and test are disjoint; only the class
    # count and the split a loader reads are left to check.
    if c.bound and c.bound[0] < CIFAR100_CLASSES:
        raise c.bad(f'CIFAR-100 labels are 0..{CIFAR100_CLASSES - 1} but '
                    f'{c.bound[1]}. Set it to {CIFAR100_CLASSES}')
    batch = c.path(f'cifar-100-python/{split}')
    return [(osp.abspath(batch), None, (batch, 'all images'), None)], ''


def _classes_file_count(c):
    """Number of classes a ``classes`` file of the config names, or None."""
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


def _read_custom(c):
    for entry, name, script in _CONVERTED:
        if c.root and osp.exists(osp.join(c.root, entry)):
            c.name = c.section = name
            c.hint = (f'Its meta/*.txt files are written by the {name} '
                      f'converter: `mim run figkd_mmrazor {script[:-3]} '
                      f'{c.root}` (installed package) or `python '
                      f'tools/dataset_converters/{script} {c.root}` (source '
                      'tree). ')
    prefix = c.cfg.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    if prefix:  # else the images are under data_root, already checked
        c.need(prefix, 'folder')
    ann_file = c.cfg.get('ann_file') or ''
    if ann_file:
        c.need(ann_file)
    with_label = c.cfg.get('with_label', True)
    if with_label:
        count = _classes_file_count(c)
        if count is not None and (c.bound is None or count < c.bound[0]):
            c.bound = (count, f'the config names {count} classes')
    if not ann_file:
        # Folder mode: one sub-folder per class. Listing every image is
        # mmpretrain's work (it names an empty class folder itself).
        folder = c.path(prefix) if prefix else c.root
        classes = [e for e in os.scandir(folder) if e.is_dir()]
        if with_label and not classes:
            raise c.empty(f'{folder} has no class folders')
        if with_label and c.bound and len(classes) > c.bound[0]:
            raise c.bad(f'{folder} has {len(classes)} class folders but '
                        f'{c.bound[1]}')
        return None, ''
    c.split_name = ann_file

    def parse(line):
        if not with_label:
            return line, None
        # Exactly mmpretrain's split: paths may hold spaces, not tabs.
        fields = line.strip().rsplit(' ', 1)
        if len(fields) != 2:
            raise ValueError('expected "<image path> <label>" separated by '
                             'a space')
        return fields[0], int(fields[1])

    image = c.images(prefix)
    samples = [(image(rel), label, place, place)
               for (rel, label), place in c.lines(ann_file, parse)]
    return samples, f'{c.path(ann_file)} is empty'


_READERS = {
    'CUB': _read_cub,
    'StanfordCars': _read_cars,
    'FGVCAircraft': _read_aircraft,
    'OxfordIIITPet': _read_pets,
    'Flowers102': _read_flowers,
    'CIFAR100': _read_cifar100,
    'CustomDataset': _read_custom,
}


def _checkable(dataset_cfg):
    """The leaf configs of a type we know, on a local (stat-able) root."""
    for cfg in _leaves(dataset_cfg):
        if (_type_name(cfg) in _READERS
                and '://' not in str(cfg.get('data_root') or '')):
            yield cfg


def _check_samples(c, samples, why_empty):
    """Labels in range, no image twice, not empty; ``{key: place}``."""
    if samples is None:  # not listed cheaply (CustomDataset folder mode)
        return {}
    if not samples:
        raise c.empty(why_empty)
    top, source = c.bound or (None, None)
    for _, label, _, place in samples:
        if label is not None and (label < 0 or top is not None
                                  and label >= top):
            one_based = c.type in ('CUB', 'StanfordCars', 'OxfordIIITPet',
                                   'Flowers102')
            written = (f'class id {label + 1} (1-based) is label {label}'
                       if one_based else f'label {label}')
            allowed = '0..' if top is None else f'0..{top - 1} ({source})'
            raise c.bad(
                f'{_where(place)}: {written}, outside {allowed}. Fix the '
                'annotation, or make num_classes of the model head(s) the '
                "dataset's class count")
    seen = {}
    for key, _, place, _ in samples:
        if key in seen:
            raise c.bad(
                f'{_where(place)}: image {key} is listed again in split '
                f'{c.split_name!r} (first at {_where(seen[key])}); it would '
                'be read twice per epoch. Remove one of the two lines')
        seen[key] = place
    return seen


def _read_leaves(dataset_cfg, bound, memo=None):
    """``[(check, {image key: place})]``, one per checkable leaf.

    ``memo`` keeps what was read by config, so that a test loader equal to
    the val loader (the usual case) is read once.
    """
    memo = {} if memo is None else memo
    found = []
    for cfg in _checkable(dataset_cfg):
        key = repr(cfg)
        if key not in memo:
            c = _Check(cfg, bound)
            if c.root and not osp.isdir(c.root):
                raise FileNotFoundError(
                    c.say(f'data_root folder {c.root} does not exist'))
            memo[key] = (c, _check_samples(c, *_READERS[c.type](c)))
        found.append(memo[key])
    return found


def check_dataset_root(dataset_cfg, num_classes=None):
    """Check the files mmpretrain reads for ``dataset_cfg`` and their content.

    ``dataset_cfg`` is a dataset config dict as in mmpretrain configs
    (``type``, ``data_root``, ``split`` or ``ann_file``/``data_prefix``...);
    wrappers (``dataset=``/``datasets=``) are looked through. Types outside
    :data:`SUPPORTED_TYPES` and remote data roots are not checked.
    ``num_classes``, if given, bounds the labels (else only negative labels
    are refused).

    Raises:
        FileNotFoundError: a file or folder is missing; the message names it,
            the dataset and the section of the dataset guide to follow.
        ValueError: a bad split, an annotation line that does not parse, a
            label out of range, an image listed twice, an empty split (file
            and line number in the message) or an unreadable .mat file.
    """
    bound = None if num_classes is None else (num_classes,
                                              f'num_classes={num_classes}')
    _read_leaves(dataset_cfg, bound)


def check_config(cfg, loaders=tuple(_ROLES)):
    """:func:`check_dataset_root` for the dataloaders of a runner config.

    Labels are bounded by the model's head (:func:`head_num_classes`), and
    no image read for training may be read for validation or testing.
    ``loaders`` names the dataloaders to check (those the config has);
    testing alone needs only ``('test_dataloader',)``.
    """
    bound = head_num_classes(cfg)
    read, memo = {}, {}
    for key in loaders:
        loader = cfg.get(key) or {}
        if loader.get('dataset'):
            read[key] = _read_leaves(loader['dataset'], bound, memo)
    train = [seen for _, seen in read.pop('train_dataloader', [])]
    for key, leaves in read.items():
        for (c, seen), trained in itertools.product(leaves, train):
            image = next((k for k in seen if k in trained), None)
            if image is None:
                continue
            place, train_place = seen[image], trained[image]
            raise c.bad(
                f'image {image} is read for training ({_where(train_place)}) '
                f'and for {_ROLES[key]} ({_where(place)}), so its score '
                f'would measure memorisation. Remove it from one split, or '
                f'point {key} at the held-out split')


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
