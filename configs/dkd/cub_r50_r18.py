# DKD: ResNet-50 (mmpretrain's CUB model) -> ResNet-18 on CUB-200-2011.
_base_ = [
    '../_base_/datasets/cub_bs8_448.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/r50_r18.py',
    '../_base_/distill/dkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # A URL default; a local path works too.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_8xb8_cub_20220307-57840e60.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
