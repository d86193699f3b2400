# CIFAR-100 at 32 px, batch 16 per GPU (128 on 8 GPUs): mmpretrain's recipe
# (pad-4 random crop + flip; the images are already RGB). download=False: a
# missing dataset is an error at start-up, never a download.
# Layout: docs/datasets.md#cifar-100
_base_ = 'mmpretrain::_base_/datasets/cifar100_bs16.py'

data_preprocessor = dict(
    type='ClsDataPreprocessor',
    _scope_='mmpretrain',
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)

train_dataloader = dict(dataset=dict(download=False))
val_dataloader = dict(
    dataset=dict(data_root='data/cifar100', download=False))
test_dataloader = val_dataloader
