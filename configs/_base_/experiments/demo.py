# The demo's experiment (tools/demo_study.py), shared by
# configs/demo/{kd,dkd,figkd}.py, which add only their loss: the demo pair
# (pairs/demo.py) on the demo dataset, with the schedule and seed of the
# student alone (configs/demo/student.py).
_base_ = [
    '../datasets/glyphs.py',
    '../schedules/demo.py',
    '../distill_runtime.py',
    '../pairs/demo.py',
]

model = dict(
    # Written by configs/demo/teacher.py (tools/demo_study.py passes the
    # path of its own teacher run).
    teacher_ckpt='work_dirs/demo/teacher/epoch_6.pth')
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')

# As _base_/demo_runtime.py (not inheritable next to distill_runtime.py).
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=True,
                    max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
