# ResNet-18 alone (cross-entropy) on CUB-200-2011: the baseline of
# configs/*/cub_r50_r18.py, same data and schedule.
_base_ = [
    '../_base_/models/resnet18_in1k.py',
    '../_base_/datasets/cub_bs8_448.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=200))
