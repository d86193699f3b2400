# Runtime of every distillation experiment: MMRazor scope, the plugin, and
# student-only checkpoints next to the regular ones (loadable by mmpretrain).
_base_ = './default_runtime.py'

default_scope = 'mmrazor'
custom_hooks = [dict(type='StudentCheckpointHook')]
