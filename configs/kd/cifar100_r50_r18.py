# KD, ResNet_CIFAR-50 -> ResNet_CIFAR-18 on CIFAR-100 at 32 px.
_base_ = [
    '../_base_/experiments/cifar100_r50_r18.py',
    '../_base_/distill/kd.py',
]

model = dict(distiller={{_base_.distiller}})
