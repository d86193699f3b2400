# ResNet_CIFAR-50 -> ResNet_CIFAR-18 on Tiny-ImageNet at 64 px: the experiment
# of configs/{figkd,kd,dkd}/tiny_imagenet_r50_r18.py, which add only their
# loss.
# The student alone: configs/baselines/tiny_imagenet_r18.py.
_base_ = [
    '../datasets/tiny_imagenet_bs16_64.py',
    '../schedules/tiny_imagenet_bs128.py',
    '../distill_runtime.py',
    '../pairs/r50_r18_cifar.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # No released teacher: configs/teachers/tiny_imagenet_r50.py writes it.
    teacher_ckpt='work_dirs/teachers/tiny_imagenet_r50/epoch_200.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
