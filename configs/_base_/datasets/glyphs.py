# The glyph benchmark (figkd_mmrazor.glyphs): 148 letter classes in 20
# families (A A-grave A-acute ..., a a-grave ..., ...) drawn from the 16
# DejaVu and STIX faces that matplotlib installs, 40 / 20 / 30 train /
# validation / test images a class at 32 px, in the CUB-200-2011 layout that
# mmpretrain's CUB class loads. Write it with
#   python -m figkd_mmrazor.glyphs data/glyphs
# (tools/demo_study.py does so itself).
#
# val_dataloader scores the test split, once, after the last epoch: that is
# the number a study reports. Choose settings on the validation split
# instead, which is the 'test' split of data/glyphs/validation:
#   --cfg-options val_dataloader.dataset.data_root=data/glyphs/validation
#
# Augmentation: a random crop of up to 2 px shift with edge padding (the
# paper's colour continues). No flip: mirrored letters are other letters.
dataset_type = 'CUB'
data_root = 'data/glyphs'
# One class name a line, in label order, written by the generator.
classes = data_root + '/class_names.txt'

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    _scope_='mmpretrain',  # also under MMRazor's scope
    num_classes=148,
    # Per-channel statistics of the default training split (RGB).
    mean=[140.4, 140.6, 140.3],
    std=[50.4, 50.3, 50.3],
    to_rgb=True)  # images load as BGR

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=2, padding_mode='edge'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

# 5,920 training images: 93 iterations of 64 an epoch. Tiny PNGs decode
# faster than worker processes start: load in the main process.
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
    batch_size=200,
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
