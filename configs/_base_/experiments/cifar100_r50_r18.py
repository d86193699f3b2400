# ResNet_CIFAR-50 -> ResNet_CIFAR-18 on CIFAR-100 at 32 px: the experiment of
# configs/{figkd,kd,dkd}/cifar100_r50_r18.py, which add only their loss.
# The student alone: configs/baselines/cifar100_r18.py.
_base_ = [
    '../datasets/cifar100_bs16.py',
    '../schedules/cifar100_bs128.py',
    '../distill_runtime.py',
    '../pairs/r50_r18_cifar.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=100)),
    teacher=dict(head=dict(num_classes=100)),
    # mmpretrain's released resnet50_8xb16_cifar100, fetched on first use.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_b16x8_cifar100_20210528-67b58a1b.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
