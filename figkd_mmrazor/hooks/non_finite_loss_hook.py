"""Stop a diverged run at the step it diverges, before it is saved."""
import math

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..guides import guide

CAUSES = ('Usual causes: a learning rate too high for this batch size '
          '(optim_wrapper.optimizer.lr; --auto-scale-lr scales it with the '
          'batch), fp16 overflow under --amp (train without it, or with a '
          'lower lr), or a teacher checkpoint whose logits are NaN/Inf '
          '(check model.teacher_ckpt). See '
          f'{guide("errors.md", "Runs and work dirs")}.')


class NonFiniteLossError(FloatingPointError):
    """A training step or a checkpoint with non-finite values; the message
    names the step."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``NonFiniteLossError`` at the first non-finite logged loss.

    Every loss of the step's outputs is checked (``loss``, ``student.loss``,
    ``distill.loss_*``, ...), and every floating tensor of a checkpoint
    before it is written. The priority is above ``CheckpointHook``'s, so the
    step that diverges is never saved: the last checkpoint on disk is the
    last finite one.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        losses = {name: float(value.detach() if torch.is_tensor(value)
                              else value)
                  for name, value in (outputs or {}).items()
                  if 'loss' in name}
        bad = {name: value for name, value in losses.items()
               if not math.isfinite(value)}
        if bad:
            losses = ', '.join(f'{name}={value}'
                               for name, value in bad.items())
            epoch = (f'Epoch(train) [{runner.epoch + 1}]'
                     f'[{batch_idx + 1}/{len(runner.train_dataloader)}]')
            raise NonFiniteLossError(
                f'Non-finite loss at {epoch}, iteration {runner.iter + 1}: '
                f'{losses}. Training stopped; this step was not saved. '
                f'{CAUSES}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key, value in checkpoint.get('state_dict', {}).items():
            if (torch.is_tensor(value) and value.is_floating_point()
                    and not torch.isfinite(value).all()):
                meta = checkpoint.get('meta', {})
                raise NonFiniteLossError(
                    f'Refusing to save a checkpoint with non-finite weights '
                    f'({key}) at epoch {meta.get("epoch")}, iteration '
                    f'{meta.get("iter")}. {CAUSES}')
