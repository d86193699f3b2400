"""Tiny-ImageNet-200 (official release) -> CustomDataset annotation files.

Usage: python tools/dataset_converters/tiny_imagenet.py DATA_ROOT

DATA_ROOT is the extracted tiny-imagenet-200/ folder (see
docs/datasets.md#tiny-imagenet):

    wnids.txt, words.txt
    train/<wnid>/images/<wnid>_<k>.JPEG   (<wnid>_boxes.txt beside: unused)
    val/images/val_<k>.JPEG, val/val_annotations.txt
    test/images/...                       (unlabelled, ignored)

Writes, and overwrites on a rerun (the output depends only on the inputs):

    DATA_ROOT/meta/train.txt    "train/<wnid>/images/<file> <label>" per line
    DATA_ROOT/meta/val.txt      "val/images/<file> <label>" per line
    DATA_ROOT/meta/classes.txt  class names from words.txt, line i is label i

Label i is the i-th wnid in sorted order (not wnids.txt order), the order a
torchvision ImageFolder over train/ gives, so teachers trained that way keep
their class indices. Paths are relative to DATA_ROOT; no image is copied.
"""
import argparse
import os
import os.path as osp

IMAGE_EXTS = ('.jpeg', '.jpg', '.png')


def _need(path, what):
    if not osp.exists(path):
        raise FileNotFoundError(
            f'Tiny-ImageNet: missing {what} {path} (DATA_ROOT must be the '
            'extracted tiny-imagenet-200/ folder; see '
            'docs/datasets.md#tiny-imagenet).')
    return path


def _lines(path):
    """(line number, stripped line) for the non-blank lines of a text file."""
    with open(path, encoding='utf-8') as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1)
                if line.strip()]


def read_wnids(data_root):
    path = _need(osp.join(data_root, 'wnids.txt'), 'file')
    wnids = [line for _, line in _lines(path)]
    if not wnids or len(set(wnids)) != len(wnids):
        raise ValueError(f'Tiny-ImageNet: {path} is empty or repeats a wnid.')
    return sorted(wnids)


def read_names(data_root, wnids):
    """First synonym from words.txt per wnid; wnid appended if not unique."""
    path = _need(osp.join(data_root, 'words.txt'), 'file')
    words = {}
    for n, line in _lines(path):
        wnid, sep, names = line.partition('\t')
        if not sep:
            raise ValueError(f'Tiny-ImageNet: {path}:{n}: expected '
                             f'"<wnid>\\t<names>", got {line!r}.')
        words[wnid] = names.split(',')[0].strip()
    missing = [w for w in wnids if w not in words]
    if missing:
        raise ValueError(f'Tiny-ImageNet: {path} has no entry for {missing}.')
    names = [words[w] for w in wnids]
    # Class names must be unique for mmpretrain's class_to_idx.
    return [f'{name} ({w})' if names.count(name) > 1 else name
            for name, w in zip(names, wnids)]


def read_train(data_root, wnids):
    samples = []
    for label, wnid in enumerate(wnids):
        rel_dir = f'train/{wnid}/images'
        folder = _need(osp.join(data_root, rel_dir), 'folder')
        files = sorted(f for f in os.listdir(folder)
                       if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise FileNotFoundError(f'Tiny-ImageNet: no images in {folder}.')
        samples += [(f'{rel_dir}/{f}', label) for f in files]
    return samples


def read_val(data_root, wnids):
    path = _need(osp.join(data_root, 'val', 'val_annotations.txt'), 'file')
    label_of = {w: i for i, w in enumerate(wnids)}
    samples = []
    for n, line in _lines(path):
        fields = line.split('\t')
        if len(fields) < 2 or fields[1] not in label_of:
            raise ValueError(
                f'Tiny-ImageNet: {path}:{n}: expected "<file>\\t<wnid from '
                f'wnids.txt>\\tx0\\ty0\\tx1\\ty1", got {line!r}.')
        rel = f'val/images/{fields[0]}'
        _need(osp.join(data_root, rel), 'image listed in val_annotations.txt')
        samples.append((rel, label_of[fields[1]]))
    return samples


def _write(path, lines):
    # Write beside and rename, so an interrupted run never leaves a half file
    # that a later training run would silently read.
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(line + '\n' for line in lines)
    os.replace(tmp, path)


def convert(data_root):
    """Write DATA_ROOT/meta/{train,val,classes}.txt; return sample counts."""
    _need(data_root, 'data root')
    wnids = read_wnids(data_root)
    classes = read_names(data_root, wnids)
    splits = {'train': read_train(data_root, wnids),
              'val': read_val(data_root, wnids)}
    os.makedirs(osp.join(data_root, 'meta'), exist_ok=True)
    for split, samples in splits.items():
        _write(osp.join(data_root, 'meta', f'{split}.txt'),
               [f'{rel} {label}' for rel, label in samples])
    _write(osp.join(data_root, 'meta', 'classes.txt'), classes)
    return {split: len(samples) for split, samples in splits.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='the tiny-imagenet-200/ folder')
    counts = convert(parser.parse_args().data_root)
    print(f'Tiny-ImageNet: wrote meta/train.txt ({counts["train"]} images), '
          f'meta/val.txt ({counts["val"]} images) and meta/classes.txt')


if __name__ == '__main__':
    main()
