# FiGKD: ResNet_CIFAR-50 -> ResNet_CIFAR-18 on Tiny-ImageNet.
_base_ = [
    '../_base_/datasets/tiny_imagenet_bs16_64.py',
    '../_base_/schedules/tiny_imagenet_bs128.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/r50_r18_cifar.py',
    '../_base_/distill/figkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # No released teacher: written by configs/teachers/tiny_imagenet_r50.py
    # (train it first, or set --cfg-options model.teacher_ckpt=PATH).
    teacher_ckpt='work_dirs/teachers/tiny_imagenet_r50/epoch_200.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
