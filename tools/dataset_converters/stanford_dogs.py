"""Stanford Dogs (official release) -> CustomDataset annotation files.

Usage: python tools/dataset_converters/stanford_dogs.py DATA_ROOT

DATA_ROOT holds the official archives, extracted (see
docs/datasets.md#stanford-dogs):

    DATA_ROOT/Images/n02085620-Chihuahua/n02085620_10074.jpg ...   (images.tar)
    DATA_ROOT/lists/train_list.mat, DATA_ROOT/lists/test_list.mat  (lists.tar)

Writes, and overwrites on a rerun (the output depends only on the inputs):

    DATA_ROOT/meta/train.txt    "Images/<breed dir>/<file>.jpg <label>" lines
    DATA_ROOT/meta/val.txt      the official test list, same format
    DATA_ROOT/meta/classes.txt  breed names, line i is label i

Labels are the official 1-based ``labels`` of the .mat lists minus one, so they
follow the sorted synset folders, the order a torchvision ImageFolder over
Images/ would give. Paths are relative to DATA_ROOT; no image is copied.
"""
import argparse
import os
import os.path as osp

import numpy as np

LIST_FILES = {'train': 'train_list.mat', 'val': 'test_list.mat'}


def _find_list(data_root, name):
    # lists.tar has no top folder, so people extract it either into lists/
    # (as documented) or straight into DATA_ROOT; accept both.
    for candidate in (osp.join(data_root, 'lists', name),
                      osp.join(data_root, name)):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'Stanford Dogs: missing {osp.join(data_root, "lists", name)} '
        '(extract the official lists.tar into DATA_ROOT/lists/; see '
        'docs/datasets.md#stanford-dogs).')


def _as_str(cell):
    # loadmat wraps each MATLAB string of a cell array in a 1-element array.
    while isinstance(cell, np.ndarray):
        if cell.size != 1:
            raise ValueError(f'expected one string, got array {cell!r}')
        cell = cell.reshape(-1)[0]
    return str(cell)


def read_list(path):
    """[(relative path under Images/, 0-based label)] from a *_list.mat."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as err:  # scipy raises several types for a bad file
        raise ValueError(f'Stanford Dogs: cannot read {path}: {err}') from err
    for key in ('file_list', 'labels'):
        if key not in mat:
            raise ValueError(
                f'Stanford Dogs: {path} has no "{key}" field (fields: '
                f'{sorted(k for k in mat if not k.startswith("__"))}); is '
                'it the official train_list.mat / test_list.mat?')
    files = [_as_str(c) for c in mat['file_list'].reshape(-1)]
    labels = mat['labels'].reshape(-1)
    if len(files) != len(labels):
        raise ValueError(f'Stanford Dogs: {path} lists {len(files)} files '
                         f'but {len(labels)} labels.')
    samples = []
    for i, (rel, label) in enumerate(zip(files, labels)):
        if label != int(label) or label < 1 or '/' not in rel:
            raise ValueError(f'Stanford Dogs: {path} entry {i + 1} is '
                             f'({rel!r}, {label!r}); expected '
                             "('<synset>-<breed>/<file>.jpg', label >= 1).")
        samples.append((rel, int(label) - 1))
    return samples


def _classes(splits):
    """Breed folder per label, checking each label names exactly one folder."""
    folder_of = {}
    for path, samples in splits:
        for rel, label in samples:
            folder = rel.split('/', 1)[0]
            if folder_of.setdefault(label, folder) != folder:
                raise ValueError(
                    f'Stanford Dogs: {path} gives label {label + 1} to both '
                    f'{folder_of[label]} and {folder}.')
    missing = sorted(set(range(len(folder_of))) - set(folder_of))
    if missing or not folder_of:
        raise ValueError('Stanford Dogs: labels are not contiguous from 1; '
                         f'missing {[m + 1 for m in missing]}.')
    # 'n02085620-Chihuahua' -> 'Chihuahua' (breed names may contain '-').
    return [folder_of[i].split('-', 1)[-1] for i in range(len(folder_of))]


def _write(path, lines):
    # Write beside and rename, so an interrupted run never leaves a half file
    # that a later training run would silently read.
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(line + '\n' for line in lines)
    os.replace(tmp, path)


def convert(data_root):
    """Write DATA_ROOT/meta/{train,val,classes}.txt; return sample counts."""
    if not osp.isdir(data_root):
        raise FileNotFoundError(
            f'Stanford Dogs: data root {data_root} does not exist (see '
            'docs/datasets.md#stanford-dogs).')
    images = osp.join(data_root, 'Images')
    if not osp.isdir(images):
        raise FileNotFoundError(
            f'Stanford Dogs: missing folder {images} (extract the official '
            'images.tar into DATA_ROOT; see docs/datasets.md#stanford-dogs).')
    splits = {}
    for split, name in LIST_FILES.items():
        path = _find_list(data_root, name)
        splits[split] = (path, read_list(path))
    classes = _classes(splits.values())

    for path, samples in splits.values():
        for rel, _ in samples:
            if not osp.isfile(osp.join(images, rel)):
                raise FileNotFoundError(
                    f'Stanford Dogs: {path} lists {rel}, but '
                    f'{osp.join(images, rel)} does not exist; is Images/ '
                    'fully extracted?')

    os.makedirs(osp.join(data_root, 'meta'), exist_ok=True)
    for split, (_, samples) in splits.items():
        _write(osp.join(data_root, 'meta', f'{split}.txt'),
               [f'Images/{rel} {label}' for rel, label in samples])
    _write(osp.join(data_root, 'meta', 'classes.txt'), classes)
    return {split: len(samples) for split, (_, samples) in splits.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='folder holding Images/ and lists/')
    counts = convert(parser.parse_args().data_root)
    print(f'Stanford Dogs: wrote meta/train.txt ({counts["train"]} images), '
          f'meta/val.txt ({counts["val"]} images) and meta/classes.txt')


if __name__ == '__main__':
    main()
