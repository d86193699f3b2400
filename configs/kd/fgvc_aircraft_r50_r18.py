# KD, ResNet-50 -> ResNet-18 on FGVC-Aircraft at 448 px.
_base_ = [
    '../_base_/experiments/fgvc_aircraft_r50_r18.py',
    '../_base_/distill/kd.py',
]

model = dict(distiller={{_base_.distiller}})
