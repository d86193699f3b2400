# The pair of r50_r18.py with the CIFAR stem (3x3 stride-1 stem, no max
# pooling, for 32-64 px images): teacher ResNet_CIFAR-50 (mmpretrain's
# resnet50_cifar, the architecture of its released CIFAR-100 model
# resnet50_8xb16_cifar100) -> student ResNet_CIFAR-18 (resnet18_cifar).
# No ImageNet weights exist for this stem: the student trains from scratch
# (_delete_ drops the ImageNet-1k init_cfg of r50_r18.py).
_base_ = './r50_r18.py'

model = dict(
    architecture=dict(
        backbone=dict(
            _delete_=True,
            type='ResNet_CIFAR',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch')),
    teacher=dict(backbone=dict(type='ResNet_CIFAR')))
