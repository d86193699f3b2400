from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .student_checkpoint_hook import StudentCheckpointHook

__all__ = ['AtomicCheckpointHook', 'NonFiniteLossError',
           'NonFiniteLossHook', 'StudentCheckpointHook']
