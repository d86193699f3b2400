# DKD, Swin-L -> ResNet-18 on CUB-200-2011 at 384 px.
_base_ = [
    '../_base_/experiments/cub_swinl_r18.py',
    '../_base_/distill/dkd.py',
]

model = dict(distiller={{_base_.distiller}})
