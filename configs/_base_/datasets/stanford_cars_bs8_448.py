# Stanford Cars (196 classes; official train / test split) at 448 px, batch
# 8 per GPU: CUB's pipeline and loaders with another dataset.
# Layout: docs/datasets.md#stanford-cars
_base_ = './cub_bs8_448.py'

data_root = 'data/Stanford_Cars'
dataset_type = 'StanfordCars'
data_preprocessor = dict(num_classes=196)  # mean/std/to_rgb as CUB

train_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='train'))
val_dataloader = dict(
    dataset=dict(type=dataset_type, data_root=data_root, split='test'))
test_dataloader = val_dataloader
