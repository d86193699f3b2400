# The embedded demo dataset (figkd_mmrazor.demo): a synthetic fine-grained
# "bird" set in the CUB-200-2011 layout, loaded by mmpretrain's CUB class.
# Default spec: 50 classes (10 families x 5 species), 30 train + 10 test
# images per class, 32 px. Write it with
#   python -m figkd_mmrazor.demo data/demo_cub
# (tools/demo_study.py does so itself). CIFAR-style augmentation: pad-4 random
# crop and horizontal flip (the birds face either way anyway).
dataset_type = 'CUB'
data_root = 'data/demo_cub'

# mmpretrain's CUB carries the 200 real bird names: name the demo classes
# (DemoSpec().class_names(); the study passes other names for other specs).
families, species_per_family = 10, 5
classes = [
    f'{c + 1:03d}.Family{c // species_per_family}_'
    f'Species{c % species_per_family}'
    for c in range(families * species_per_family)
]

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    _scope_='mmpretrain',  # also under MMRazor's scope
    num_classes=len(classes),
    # Per-channel statistics of the default demo images (RGB).
    mean=[129.6, 126.4, 125.3],
    std=[50.1, 49.9, 51.1],
    to_rgb=True)  # images load as BGR

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

# 1500 training images: a batch of 64 gives 24 iterations per epoch. Tiny
# PNGs decode faster than worker processes start: load in the main process.
# persistent_workers=False is explicit because mmpretrain's tools/train.py
# (and mim train mmpretrain) turns it on unless a config sets it, and torch
# refuses persistent workers without workers.
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',  # also under MMRazor's default scope
        data_root=data_root,
        split='train',
        classes=classes,
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',  # also under MMRazor's default scope
        data_root=data_root,
        split='test',
        classes=classes,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ), _scope_='mmpretrain')

test_dataloader = val_dataloader
test_evaluator = val_evaluator
