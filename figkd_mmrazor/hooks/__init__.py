from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossHook
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossHook',
           'StudentCheckpointHook']
