# KD, ResNet-50 -> MobileNetV2 on CUB-200-2011 at 448 px.
_base_ = [
    '../_base_/experiments/cub_r50_mbv2.py',
    '../_base_/distill/kd.py',
]

model = dict(distiller={{_base_.distiller}})
