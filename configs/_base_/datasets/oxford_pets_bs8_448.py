# Oxford-IIIT Pets (37 breeds; train on trainval, test on test) at 448 px,
# batch 8 per GPU: CUB's pipeline and loaders with another dataset.
# Layout: docs/datasets.md#oxford-iiit-pets
_base_ = './cub_bs8_448.py'

data_root = 'data/Oxford-IIIT_Pets'
dataset_type = 'OxfordIIITPet'
data_preprocessor = dict(num_classes=37)  # mean/std/to_rgb as CUB

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
