# Stanford Dogs (120 breeds; official train / test lists) at 448 px, batch 8
# per GPU: CUB's pipeline and loaders, read through CustomDataset from the
# meta/*.txt that tools/dataset_converters/stanford_dogs.py writes.
# Layout: docs/datasets.md#stanford-dogs
_base_ = './cub_bs8_448.py'

dataset_type = 'CustomDataset'
data_root = 'data/stanford_dogs'
data_preprocessor = dict(num_classes=120)  # mean/std/to_rgb as CUB

# _delete_: CUB's dataset keys (split) do not apply to CustomDataset.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        _scope_='mmpretrain',  # also under MMRazor's default scope
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='',  # paths in meta/*.txt are relative to data_root
        classes=data_root + '/meta/classes.txt',  # relative to the cwd
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        _scope_='mmpretrain',
        data_root=data_root,
        ann_file='meta/val.txt',  # the official test list
        data_prefix='',
        classes=data_root + '/meta/classes.txt',
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
