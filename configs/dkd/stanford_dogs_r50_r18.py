# DKD: ResNet-50 -> ResNet-18 on Stanford Dogs.
_base_ = [
    '../_base_/datasets/stanford_dogs_bs8_448.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/r50_r18.py',
    '../_base_/distill/dkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=120)),
    teacher=dict(head=dict(num_classes=120)),
    # No released teacher: written by configs/teachers/stanford_dogs_r50.py
    # (train it first, or set --cfg-options model.teacher_ckpt=PATH).
    teacher_ckpt='work_dirs/teachers/stanford_dogs_r50/epoch_100.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
