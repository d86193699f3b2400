# ResNet-50 -> ResNet-18 on FGVC-Aircraft at 448 px: the experiment of
# configs/{figkd,kd,dkd}/fgvc_aircraft_r50_r18.py, which add only their loss.
# The student alone: configs/baselines/fgvc_aircraft_r18.py.
_base_ = [
    '../datasets/fgvc_aircraft_bs8_448.py',
    '../schedules/cub_bs64.py',
    '../distill_runtime.py',
    '../pairs/r50_r18.py',
]

model = dict(
    architecture=dict(head=dict(num_classes=100)),
    teacher=dict(head=dict(num_classes=100)),
    # No released teacher: configs/teachers/fgvc_aircraft_r50.py writes it.
    teacher_ckpt='work_dirs/teachers/fgvc_aircraft_r50/epoch_100.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
