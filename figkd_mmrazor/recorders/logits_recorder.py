"""Record a classifier's logits without knowing how its head is built."""
import difflib
from typing import Any, Optional

import torch
from mmrazor.models.task_modules.recorder import ModuleOutputsRecorder
from mmrazor.registry import TASK_UTILS
from torch import nn


@TASK_UTILS.register_module()
class LogitsRecorder(ModuleOutputsRecorder):
    """Record the logits a module outputs, handed out in float32.

    In configs: ``dict(type='Logits')`` (MMRazor appends ``Recorder``).

    The default source, ``'head'``, is the ``head`` of an mmpretrain
    ``ImageClassifier``: its forward output is the class score whatever the
    head's inner layout (``LinearClsHead``, ``StackedLinearClsHead``,
    ``VisionTransformerClsHead``, ...), so no head-specific module name is
    needed. The record keeps its autograd graph: the distillation loss's
    gradient reaches the model through it.

    For a module that returns a tuple or list, pick the logits as for any
    MMRazor recorder, with ``data_idx`` in the distiller's
    ``loss_forward_mappings``, e.g.
    ``preds_S=dict(from_student=True, recorder='logits', data_idx=0)``.

    Args:
        source (str): Name of the module whose output is recorded, as in
            ``model.named_modules()``. Defaults to ``'head'``.
    """

    def __init__(self, source: str = 'head') -> None:
        super().__init__(source)
        self._model_name = 'the model'

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        if model is None:
            raise ValueError('LogitsRecorder needs the model to hook into.')
        modules = dict(model.named_modules())
        if self.source not in modules:
            close = difflib.get_close_matches(self.source, list(modules), n=5,
                                              cutoff=0.4)
            raise ValueError(
                f'LogitsRecorder: {type(model).__name__} has no module '
                f'named {self.source!r}. Closest names: {close}. Set '
                "`source` to the module that outputs the logits ('head' "
                'for mmpretrain classifiers).')
        self._model_name = type(model).__name__
        modules[self.source].register_forward_hook(self.forward_hook)

    def get_record_data(self, record_idx: int = 0,
                        data_idx: Optional[int] = None) -> Any:
        if not self.data_buffer:
            raise RuntimeError(
                f'LogitsRecorder: {self.source!r} of {self._model_name} '
                'did not run during the forward pass, so no logits were '
                "recorded. Choose a module that runs in forward(mode='loss'), "
                "e.g. 'head'.")
        logits = super().get_record_data(record_idx, data_idx)
        if not isinstance(logits, torch.Tensor):
            raise TypeError(
                f'LogitsRecorder: {self.source!r} returned a '
                f'{type(logits).__name__}, not a logits tensor. For a tuple '
                'or list, pick the logits with `data_idx` in the '
                "distiller's loss_forward_mappings, e.g. preds_S=dict("
                "from_student=True, recorder='logits', data_idx=0).")
        return logits.float()
