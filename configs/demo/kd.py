# Demo, classic KD: MMRazor's KLDivergence (tau=4, loss_weight=1) from the
# demo teacher to the student of pairs/demo.py, on top of cross-entropy.
# The student trains with the schedule and seed of configs/demo/student.py;
# the loss is, unchanged, the real recipes' configs/_base_/distill/kd.py.
_base_ = [
    '../_base_/datasets/demo_cub.py',
    '../_base_/schedules/demo.py',
    '../_base_/distill_runtime.py',
    '../_base_/pairs/demo.py',
    '../_base_/distill/kd.py',
]

model = dict(
    distiller={{_base_.distiller}},
    # Written by configs/demo/teacher.py (tools/demo_study.py passes the
    # path of its own teacher run explicitly).
    teacher_ckpt='work_dirs/demo/teacher/epoch_20.pth')
# Validate the student and, prefixed 'teacher.', the teacher.
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')

work_dir = './work_dirs/demo/kd'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=True,
                    max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
