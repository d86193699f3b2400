# ResNet-50 -> ResNet-18 on Stanford Dogs at 448 px: the experiment of
# configs/{figkd,kd,dkd}/stanford_dogs_r50_r18.py, which add only their loss.
# The student alone: configs/baselines/stanford_dogs_r18.py.
_base_ = [
    '../datasets/stanford_dogs_bs8_448.py',
    '../schedules/cub_bs64.py',
    '../distill_runtime.py',
    '../pairs/r50_r18.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=120)),
    teacher=dict(head=dict(num_classes=120)),
    # No released teacher: configs/teachers/stanford_dogs_r50.py writes it.
    teacher_ckpt='work_dirs/teachers/stanford_dogs_r50/epoch_100.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
