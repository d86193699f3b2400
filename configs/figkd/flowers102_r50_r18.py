# FiGKD, ResNet-50 -> ResNet-18 on Oxford Flowers-102 at 448 px.
_base_ = [
    '../_base_/experiments/flowers102_r50_r18.py',
    '../_base_/distill/figkd.py',
]

model = dict(distiller={{_base_.distiller}})
