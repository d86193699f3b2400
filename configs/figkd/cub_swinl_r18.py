# FiGKD: Swin-L (mmpretrain's CUB model, 91.87 top-1) ->
# ResNet-18 on CUB-200-2011 at 384 px.
_base_ = [
    '../_base_/datasets/cub_bs8_384.py',
    '../_base_/schedules/cub_bs64.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/swinl_r18.py',
    '../_base_/distill/figkd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    architecture=dict(head=dict(num_classes=200)),
    teacher=dict(head=dict(num_classes=200)),
    # A URL default; a local path works too.
    teacher_ckpt='https://download.openmmlab.com/mmclassification/v0/'
    'swin-transformer/swin-large_8xb8_cub_384px_20220307-1bbaee6a.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
