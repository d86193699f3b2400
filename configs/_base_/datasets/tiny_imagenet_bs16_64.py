# Tiny-ImageNet (200 classes, 64 px; the labelled val/ split is the test set),
# batch 16 per GPU (128 on 8 GPUs). CIFAR's augmentation scaled to 64 px:
# random crop with 8 px padding + flip. Read through CustomDataset from the
# meta/*.txt that tools/dataset_converters/tiny_imagenet.py writes.
# Layout: docs/datasets.md#tiny-imagenet
dataset_type = 'CustomDataset'
data_root = 'data/tiny-imagenet-200'
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    _scope_='mmpretrain',
    num_classes=200,
    mean=[123.675, 116.28, 103.53],  # ImageNet's statistics
    std=[58.395, 57.12, 57.375],
    to_rgb=True)  # images load as BGR

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=64, padding=8),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),  # all images are 64 x 64 already
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',  # also under MMRazor's default scope
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='',  # paths in meta/*.txt are relative to data_root
        classes=data_root + '/meta/classes.txt',  # relative to the cwd
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        _scope_='mmpretrain',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='',
        classes=data_root + '/meta/classes.txt',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', _scope_='mmpretrain', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
