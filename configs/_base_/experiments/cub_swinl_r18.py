# Swin-L -> ResNet-18 on CUB-200-2011 at 384 px: the experiment of
# configs/{figkd,kd,dkd}/cub_swinl_r18.py, which add only their loss.
# The student alone: configs/baselines/cub_r18_384px.py.
_base_ = [
    '../datasets/cub_bs8_384.py',
    '../schedules/cub_bs64.py',
    '../distill_runtime.py',
    '../pairs/swinl_r18.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # mmpretrain's released swin-large_8xb8_cub-384px, fetched on first use.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/swin-large_8xb8_cub_384px_20220307-1bbaee6a.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
