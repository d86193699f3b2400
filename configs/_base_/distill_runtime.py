# Runtime of every distillation experiment: MMRazor scope, the plugin, and
# student-only checkpoints next to the regular ones (loadable by mmpretrain).
#
# Each experiment under _base_/experiments/ also sets
#   val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
# which validates the student and, prefixed 'teacher.', the teacher. It
# cannot be set here: the schedules set val_cfg too, and mmengine refuses a
# key that two sibling bases both set.
# The experiments name their teacher checkpoint (model.teacher_ckpt): a URL
# or a path; --cfg-options model.teacher_ckpt=PATH points to another.
_base_ = './default_runtime.py'

default_scope = 'mmrazor'
custom_hooks = [dict(type='StudentCheckpointHook')]
