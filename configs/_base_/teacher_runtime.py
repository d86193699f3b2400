# Runtime of the teacher recipes (configs/teachers): log every 20
# iterations and keep the last three epoch checkpoints; the distillation
# experiments read the last one.
_base_ = './default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
