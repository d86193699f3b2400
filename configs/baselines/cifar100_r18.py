# ResNet_CIFAR-18 alone (cross-entropy, from scratch) on CIFAR-100: the
# baseline of configs/*/cifar100_r50_r18.py, same data and schedule.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar100_bs16.py',
    '../_base_/schedules/cifar100_bs128.py',
    '../_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=100))
