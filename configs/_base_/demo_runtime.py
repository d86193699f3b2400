# Runtime of the demo (configs/demo): log every 8 iterations (3 per epoch),
# keep only the last checkpoint, seed 0. The distillations set the same in
# _base_/experiments/demo.py, which inherits distill_runtime.py instead.
_base_ = './default_runtime.py'

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=8),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=True,
                    max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
