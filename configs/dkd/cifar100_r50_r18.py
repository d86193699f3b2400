# DKD: ResNet_CIFAR-50 (mmpretrain's CIFAR-100 model, 79.90 top-1) ->
# ResNet_CIFAR-18 on CIFAR-100.
_base_ = [
    '../_base_/datasets/cifar100_bs16.py',
    '../_base_/schedules/cifar100_bs128.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/r50_r18_cifar.py',
    '../_base_/distill/dkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=100)),
    teacher=dict(head=dict(num_classes=100)),
    # A URL default; a local path works too.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_b16x8_cifar100_20210528-67b58a1b.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
