"""Time the start-up dataset check on annotations of the real sizes.

Writes CUB-200-2011 (11,788 images), Stanford Cars (cars_annos.mat, 16,185
entries) and Tiny-ImageNet (100,000 + 10,000 lines) annotations into a
temporary folder (no images), then times
``figkd_mmrazor.datasets.check_config`` with train, val and test loaders next
to mmpretrain building the same datasets (what the Runner does anyway), in
one run::

    python tools/analysis/benchmark_dataset_check.py --repeat 5
"""
import argparse
import os
import os.path as osp
import tempfile
import time

import numpy as np
import scipy.io as sio
from mmpretrain.datasets import CUB, CustomDataset, StanfordCars

from figkd_mmrazor.datasets import check_config


CLASSES = {'CUB-200-2011': 200, 'Stanford Cars': 196, 'Tiny-ImageNet': 200}


def write_lines(path, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.writelines(line + '\n' for line in lines)


def make_cub(root, images=11788, classes=200):
    os.makedirs(osp.join(root, 'images'))
    ids = range(1, images + 1)
    write_lines(osp.join(root, 'images.txt'),
                (f'{i} {1 + i % classes:03d}.Bird/Bird_{i:05d}.jpg'
                 for i in ids))
    write_lines(osp.join(root, 'image_class_labels.txt'),
                (f'{i} {1 + i % classes}' for i in ids))
    write_lines(osp.join(root, 'train_test_split.txt'),
                (f'{i} {i % 2}' for i in ids))
    return [dict(type='CUB', data_root=root, split=s)
            for s in ('train', 'test')]


def make_cars(root, images=16185, classes=196):
    """cars_annos.mat as released: a 1 x N struct, every field a matrix."""
    os.makedirs(osp.join(root, 'car_ims'))
    fields = ('bbox_x1', 'bbox_y1', 'bbox_x2', 'bbox_y2', 'relative_im_path',
              'class', 'test')
    annotations = np.zeros((1, images), dtype=[(f, 'O') for f in fields])
    for i, entry in enumerate(annotations[0]):
        for f in fields[:4]:
            entry[f] = np.array([[0]], np.uint16)
        entry['relative_im_path'] = np.array([f'car_ims/{i + 1:06d}.jpg'])
        entry['class'] = np.array([[1 + i % classes]], np.uint8)
        entry['test'] = np.array([[i % 2]], np.uint8)
    sio.savemat(osp.join(root, 'cars_annos.mat'),
                {'annotations': annotations})
    return [dict(type='StanfordCars', data_root=root, split=s)
            for s in ('train', 'test')]


def make_tiny(root, classes=200, per_class=500, val=10000):
    write_lines(osp.join(root, 'wnids.txt'), [])
    write_lines(osp.join(root, 'meta', 'train.txt'),
                (f'train/n{c:08d}/images/n{c:08d}_{k}.JPEG {c}'
                 for c in range(classes) for k in range(per_class)))
    write_lines(osp.join(root, 'meta', 'val.txt'),
                (f'val/images/val_{k}.JPEG {k % classes}'
                 for k in range(val)))
    write_lines(osp.join(root, 'meta', 'classes.txt'),
                (f'class{c}' for c in range(classes)))
    return [dict(type='CustomDataset', data_root=root,
                 ann_file=f'meta/{s}.txt', data_prefix='',
                 classes=osp.join(root, 'meta', 'classes.txt'))
            for s in ('train', 'val')]


def runner_cfg(train, held_out, num_classes):
    return dict(model=dict(head=dict(num_classes=num_classes)),
                train_dataloader=dict(dataset=train),
                val_dataloader=dict(dataset=held_out),
                test_dataloader=dict(dataset=held_out))


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    dataset_class = {'CUB': CUB, 'CustomDataset': CustomDataset,
                     'StanfordCars': StanfordCars}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            'CUB-200-2011': make_cub(osp.join(tmp, 'CUB_200_2011')),
            'Stanford Cars': make_cars(osp.join(tmp, 'Stanford_Cars')),
            'Tiny-ImageNet': make_tiny(osp.join(tmp, 'tiny-imagenet-200')),
        }
        print('| dataset | check_config (s) | mmpretrain builds the same '
              'datasets (s) | ratio |')
        print('| --- | --- | --- | --- |')
        for name, (train, held_out) in cases.items():
            cfg = runner_cfg(train, held_out, CLASSES[name])
            check = best_of(args.repeat, lambda: check_config(cfg))

            def build():
                # The Runner builds train, val and test datasets.
                for dataset_cfg in (train, held_out, held_out):
                    kwargs = {k: v for k, v in dataset_cfg.items()
                              if k != 'type'}
                    dataset_class[dataset_cfg['type']](**kwargs, pipeline=[])

            built = best_of(args.repeat, build)
            print(f'| {name} | {check:.3f} | {built:.3f} | '
                  f'{check / built:.2f} |')


if __name__ == '__main__':
    main()
