# DKD, ResNet-50 -> ResNet-18 on Stanford Cars at 448 px.
_base_ = [
    '../_base_/experiments/stanford_cars_r50_r18.py',
    '../_base_/distill/dkd.py',
]

model = dict(distiller={{_base_.distiller}})
