# ResNet-50 -> ResNet-18 on Oxford-IIIT Pets at 448 px: the experiment of
# configs/{figkd,kd,dkd}/oxford_pets_r50_r18.py, which add only their loss.
# The student alone: configs/baselines/oxford_pets_r18.py.
_base_ = [
    '../datasets/oxford_pets_bs8_448.py',
    '../schedules/cub_bs64.py',
    '../distill_runtime.py',
    '../pairs/r50_r18.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=37)),
    teacher=dict(head=dict(num_classes=37)),
    # No released teacher: configs/teachers/oxford_pets_r50.py writes it.
    teacher_ckpt='work_dirs/teachers/oxford_pets_r50/epoch_100.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
