# FiGKD: ResNet-50 -> ResNet-18 on Stanford Cars.
_base_ = [
    '../_base_/datasets/stanford_cars_bs8_448.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/r50_r18.py',
    '../_base_/distill/figkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=196)),
    teacher=dict(head=dict(num_classes=196)),
    # No released teacher: written by configs/teachers/stanford_cars_r50.py
    # (train it first, or set --cfg-options model.teacher_ckpt=PATH).
    teacher_ckpt='work_dirs/teachers/stanford_cars_r50/epoch_100.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
