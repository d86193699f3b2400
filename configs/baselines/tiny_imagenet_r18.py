# ResNet_CIFAR-18 alone (cross-entropy, from scratch) on Tiny-ImageNet: the
# baseline of configs/*/tiny_imagenet_r50_r18.py, same data and schedule.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/tiny_imagenet_bs16_64.py',
    '../_base_/schedules/tiny_imagenet_bs128.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=200))
