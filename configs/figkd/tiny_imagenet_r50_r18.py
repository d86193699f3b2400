# FiGKD, ResNet_CIFAR-50 -> ResNet_CIFAR-18 on Tiny-ImageNet at 64 px.
_base_ = [
    '../_base_/experiments/tiny_imagenet_r50_r18.py',
    '../_base_/distill/figkd.py',
]

model = dict(distiller={{_base_.distiller}})
