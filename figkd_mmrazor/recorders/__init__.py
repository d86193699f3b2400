from .logits_recorder import LogitsRecorder

__all__ = ['LogitsRecorder']
