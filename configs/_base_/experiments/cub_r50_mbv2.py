# ResNet-50 -> MobileNetV2 on CUB-200-2011 at 448 px: the experiment of
# configs/{figkd,kd,dkd}/cub_r50_mbv2.py, which add only their loss.
# The student alone: configs/baselines/cub_mbv2.py.
_base_ = [
    '../datasets/cub_bs8_448.py',
    '../schedules/cub_bs64.py',
    '../distill_runtime.py',
    '../pairs/r50_mbv2.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # mmpretrain's released resnet50_8xb8_cub, fetched on first use.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet50_8xb8_cub_20220307-57840e60.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
