# Oxford Flowers-102 (102 classes; train on trainval, test on test) at
# 448 px, batch 8 per GPU: CUB's pipeline and loaders with another dataset.
# Layout: docs/datasets.md#oxford-flowers-102
_base_ = './cub_bs8_448.py'

data_root = 'data/Flowers102'
dataset_type = 'Flowers102'
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    _scope_='mmpretrain',
    num_classes=102,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)  # images load as BGR

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
