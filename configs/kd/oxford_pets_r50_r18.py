# KD, ResNet-50 -> ResNet-18 on Oxford-IIIT Pets at 448 px.
_base_ = [
    '../_base_/experiments/oxford_pets_r50_r18.py',
    '../_base_/distill/kd.py',
]

model = dict(distiller={{_base_.distiller}})
