"""FiGKD: distil the high-frequency detail of logits along the class axis."""
import json
import numbers
import os
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmrazor.registry import MODELS

from .. import class_axis
from ..wavelets import (band_operator, check_mode, check_wavelet,
                        weighted_bands)

TARGETS = ('reconstruct', 'coefficients')
# Up to this many classes the band weighting is one product with its matrix
# (at most 16 MiB in float32); beyond, level by level, which on a CPU is
# faster from about 2000 classes on (tools/analysis/benchmark_loss.py).
OPERATOR_MAX_CLASSES = 2048
DISTANCES = ('kl', 'mse')
# Keeps constant logit vectors (std 0) finite under ``standardize``.
STANDARDIZE_EPS = 1e-7
REDUCTIONS = ('none', 'batchmean', 'sum', 'mean')


@MODELS.register_module()
class FiGKDLoss(nn.Module):
    """Fine-grained KD: match the wavelet detail of teacher and student logits.

    A logit vector is a 1-D signal along the class axis. Both logits are
    decomposed with a ``level``-deep discrete wavelet transform
    (``[cA_n, cD_n, ..., cD_1]`` as :func:`figkd_mmrazor.wavedec`); the
    approximation is weighted by ``low_weight`` and the details by
    ``high_weights``; the weighted bands are then compared with ``distance``.
    With ``low_weight=1, high_weights=1, target='reconstruct',
    distance='kl'`` the loss equals MMRazor's ``KLDivergence(tau)`` for any
    wavelet and mode (perfect reconstruction).

    Args:
        tau (float): Temperature of the softmax for ``distance='kl'``.
            Defaults to 4.0.
        loss_weight (float): Factor of the returned loss. Defaults to 1.0.
        wavelet (str): A discrete wavelet of PyWavelets, e.g. ``'haar'``,
            ``'db4'``, ``'sym8'``. Defaults to ``'haar'``.
        level (int): Decomposition depth, >= 1 and at most
            ``pywt.dwt_max_level(num_classes, filter_length)``. Defaults to 1.
        mode (str): Signal extension mode, one of ``pywt.Modes.modes``.
            Defaults to ``'periodization'``: the class axis has no natural
            boundary, and periodization is the non-redundant choice (``C``
            logits give ``C`` coefficients for even lengths; for orthogonal
            wavelets the transform is orthonormal, so band energies add up).
        low_weight (float): Weight of the approximation ``cA_n``. 0 discards
            the coarse content (FiGKD's choice: the labels supply it).
            Defaults to 0.0.
        high_weights (float | Sequence[float]): Weight of the detail bands:
            one number for all, or one per level ordered coarsest first,
            i.e. the order of ``[cD_n, ..., cD_1]``. Defaults to 1.0.
        target (str): ``'reconstruct'`` inverts the weighted bands back to
            ``C`` logits and compares those; ``'coefficients'`` compares the
            concatenated weighted coefficients (bands of weight 0 are left
            out, so they add no constant entries). Defaults to
            ``'reconstruct'``.
        distance (str): ``'kl'``: ``tau**2 * KL(softmax(t / tau) ||
            softmax(s / tau))``; ``'mse'``: squared error.
            Defaults to ``'kl'``.
        reduction (str): ``'none'`` (element-wise, shape (N, D)) |
            ``'batchmean'`` (sum / N) | ``'sum'`` | ``'mean'`` (sum / (N * D)),
            for either distance. Defaults to ``'batchmean'``.
        teacher_detach (bool): Stop gradients into the teacher.
            Defaults to True.
        class_order (Sequence[int] | str, optional): A permutation of
            ``range(C)`` (or a path to a JSON file holding one, a list or
            ``{"class_order": [...]}``) applied to both logits before the
            transform, which depends on which classes are neighbours;
            ``'teacher'``: the spectral order of the teacher's class
            similarity (:mod:`figkd_mmrazor.class_axis`). Kept in the
            checkpoints; a resumed run must have the same order.
            Defaults to None (the dataset's order).
        standardize (bool): Z-score each logit vector over its classes
            (minus its mean, over its standard deviation) before the bands,
            as Logit Standardization in KD (Sun et al., CVPR 2024): the
            student matches the teacher's logits up to shift and scale.
            With ``low_weight=1, high_weights=1`` this is that paper's KD.
            Defaults to False.

    The band weighting is a fixed linear map of the logits: for each class
    count it is built once, as a matrix, from the exact transform
    (:func:`figkd_mmrazor.wavelets.band_operator`) and applied with one
    matrix product; above ``OPERATOR_MAX_CLASSES`` classes it runs level by
    level. The loss is computed in float32 whatever the logits' dtype (AMP),
    is finite for logits up to 1e4 in magnitude, and raises
    ``FloatingPointError`` naming the side whose logits are NaN or Inf.
    """

    def __init__(self,
                 tau: float = 4.0,
                 loss_weight: float = 1.0,
                 wavelet: str = 'haar',
                 level: int = 1,
                 mode: str = 'periodization',
                 low_weight: float = 0.0,
                 high_weights: Union[float, Sequence[float]] = 1.0,
                 target: str = 'reconstruct',
                 distance: str = 'kl',
                 reduction: str = 'batchmean',
                 teacher_detach: bool = True,
                 class_order: Optional[Union[Sequence[int], str]] = None,
                 standardize: bool = False):
        super().__init__()
        self.wavelet = check_wavelet(wavelet).name
        self.mode = check_mode(mode)
        if (not isinstance(level, numbers.Integral)
                or isinstance(level, bool) or level < 1):
            raise ValueError(f'level must be an integer >= 1, got {level!r}.')
        self.level = int(level)
        _check_choice('target', target, TARGETS)
        _check_choice('distance', distance, DISTANCES)
        _check_choice('reduction', reduction, REDUCTIONS)
        self.target, self.distance = target, distance
        self.reduction = reduction
        self.tau = _check_number('tau', tau, positive=True)
        self.loss_weight = _check_number('loss_weight', loss_weight)
        self.low_weight = _check_number('low_weight', low_weight)
        if isinstance(high_weights, numbers.Real):
            high_weights = [high_weights] * level
        high_weights = list(high_weights)
        if len(high_weights) != level:
            raise ValueError(
                f'high_weights has {len(high_weights)} entries but level is '
                f'{level}: give one number, or one per detail band '
                'ordered coarsest first ([cD_n, ..., cD_1]).')
        self.high_weights = [_check_number(f'high_weights[{i}]', w)
                             for i, w in enumerate(high_weights)]
        if not self.low_weight and not any(self.high_weights):
            raise ValueError('low_weight and all high_weights are 0: nothing '
                             'would be distilled. Give some band a weight.')
        self.teacher_detach = teacher_detach
        self.standardize = bool(standardize)
        order = load_class_order(class_order)
        self.register_buffer(
            'class_order',
            None if order is None else torch.tensor(order, dtype=torch.long))
        # The bands of a checkpoint's run were taken along its class order;
        # continuing along another one would make the run neither.
        self.register_load_state_dict_pre_hook(
            refuse_other_axis('class_order'))
        # float32 band operator per (class count, device); None: level by
        # level (beyond OPERATOR_MAX_CLASSES).
        self._operators = {}

    def extra_repr(self) -> str:
        return (f'wavelet={self.wavelet!r}, level={self.level}, '
                f'mode={self.mode!r}, low_weight={self.low_weight}, '
                f'high_weights={self.high_weights}, '
                f'target={self.target!r}, distance={self.distance!r}, '
                f'tau={self.tau}, reduction={self.reduction!r}, '
                f'standardize={self.standardize}')

    def forward(self, preds_S: torch.Tensor,
                preds_T: torch.Tensor) -> torch.Tensor:
        """Forward computation.

        Args:
            preds_S (torch.Tensor): Student logits of shape (N, C).
            preds_T (torch.Tensor): Teacher logits of shape (N, C).

        Return:
            torch.Tensor: The loss (a scalar unless ``reduction='none'``).
        """
        if preds_S.dim() != 2 or preds_S.shape != preds_T.shape:
            raise ValueError(
                'FiGKDLoss expects student and teacher logits of the same '
                f'shape (N, C); got {tuple(preds_S.shape)} and '
                f'{tuple(preds_T.shape)}. Record the classifier outputs '
                "(LogitsRecorder) of two models with the same classes.")
        if self.teacher_detach:
            preds_T = preds_T.detach()
        # Autocast would run the band operator's product in half precision.
        with torch.autocast(preds_S.device.type, enabled=False):
            loss = self.loss_weight * self._distance(
                self.bands_signal(preds_S), self.bands_signal(preds_T))
        # One check of the result instead of a pass over every input: a
        # non-finite logit on either side turns the loss NaN.
        if not bool(torch.isfinite(loss).all()):
            _check_finite(preds_S, preds_T)
        return loss

    def bands_signal(self, logits: torch.Tensor) -> torch.Tensor:
        """The weighted bands of (N, C) logits, as the loss compares them.

        ``weighted_bands`` (:mod:`figkd_mmrazor.wavelets`) of the float32
        logits, after ``standardize`` and ``class_order``.
        """
        logits = logits.float()
        if self.standardize:
            mean = logits.mean(1, keepdim=True)
            std = logits.std(1, keepdim=True, unbiased=False)
            logits = (logits - mean) / (std + STANDARDIZE_EPS)
        operator = self._operator(logits.shape[1], logits.device)
        if self.class_order is not None:
            logits = logits.index_select(1, self.class_order)
        if operator is not None:
            return logits @ operator
        return weighted_bands(logits, self.wavelet, self.mode,
                              self.low_weight, self.high_weights,
                              self.target)

    def _operator(self, num_classes: int,
                  device: torch.device) -> Optional[torch.Tensor]:
        """The band operator for a class count, built on its first use."""
        key = (num_classes, device)
        if key in self._operators:
            return self._operators[key]
        if (self.class_order is not None
                and self.class_order.numel() != num_classes):
            raise ValueError(
                f'class_order has {self.class_order.numel()} entries but the '
                f'logits have {num_classes} classes; give a permutation of '
                f'range({num_classes}).')
        operator = None  # level by level: memory linear in the class count
        if num_classes <= OPERATOR_MAX_CLASSES:
            # Raises for a level too deep for this class count.
            operator = band_operator(
                num_classes, self.wavelet, self.mode, self.low_weight,
                self.high_weights, self.target).to(device, torch.float32)
        self._operators[key] = operator
        return operator

    def _distance(self, signal_S: torch.Tensor,
                  signal_T: torch.Tensor) -> torch.Tensor:
        reduction = self.reduction
        if self.distance == 'kl':
            return self.tau**2 * F.kl_div(
                F.log_softmax(signal_S / self.tau, dim=1),
                F.softmax(signal_T / self.tau, dim=1),
                reduction=reduction)
        if reduction == 'batchmean':
            return F.mse_loss(signal_S, signal_T,
                              reduction='sum') / signal_S.shape[0]
        return F.mse_loss(signal_S, signal_T, reduction=reduction)


def _check_finite(preds_S: torch.Tensor, preds_T: torch.Tensor) -> None:
    bad = [side for side, logits in (('student', preds_S),
                                     ('teacher', preds_T))
           if not bool(torch.isfinite(logits).all())]
    if bad:
        raise FloatingPointError(
            f'FiGKDLoss got non-finite (NaN or Inf) {" and ".join(bad)} '
            'logits. A non-finite teacher: check its checkpoint '
            '(teacher_ckpt) and input normalisation. A non-finite student: '
            'training diverged; lower the learning rate or clip gradients '
            '(optim_wrapper.clip_grad).')


def refuse_other_axis(name: str):
    """A ``load_state_dict`` pre-hook refusing a state dict whose buffer
    ``name`` (the class order or graph) differs from the loss's own."""

    def hook(loss, state_dict, prefix, *_):
        saved, mine = state_dict.get(prefix + name), getattr(loss, name)
        if saved is None or mine is None:
            return
        if saved.shape != mine.shape or not torch.equal(saved.to(mine),
                                                        mine):
            raise ValueError(
                f'The checkpoint was trained with another {name} than this '
                f'config gives {type(loss).__name__} ({prefix}{name}): the '
                'teacher or the order changed since. Resume with the '
                'setting the run started with, or start over '
                '(--start-over).')
    return hook


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'{name} must be one of {list(choices)}, got '
                         f'{value!r}.')


def _check_number(name, value, positive=False) -> float:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not float('-inf') < value < float('inf')):
        raise ValueError(f'{name} must be a finite number, got {value!r}.')
    if value < 0 or (positive and value == 0):
        raise ValueError(f'{name} must be {"> 0" if positive else ">= 0"}, '
                         f'got {value!r}.')
    return float(value)


def load_class_order(class_order) -> Optional[list]:
    """A validated permutation from a list, a JSON file or the teacher
    (:mod:`figkd_mmrazor.class_axis`), or None."""
    if class_order is None:
        return None
    if isinstance(class_order, str) and class_order == class_axis.TEACHER:
        raise ValueError(class_axis.UNRESOLVED.format(key='class_order'))
    if class_axis.is_from_teacher(class_order):
        from ..analysis.class_order import spectral_order
        return spectral_order(class_axis.from_teacher(class_order))
    source = 'class_order'
    if isinstance(class_order, (str, os.PathLike)):
        source = str(class_order)
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f'class_order file {source} does not exist; pass a list of '
                'class indices or a JSON file holding one (the project\'s '
                '`tools/analysis/class_order.py CONFIG CHECKPOINT --out '
                'FILE` writes one).')
        with open(source) as f:
            class_order = json.load(f)
        if isinstance(class_order, dict):
            class_order = class_order.get('class_order')
    if not isinstance(class_order, (list, tuple)) or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool)
            for i in class_order):
        raise ValueError(f'{source} must be a list of class indices.')
    if sorted(class_order) != list(range(len(class_order))):
        missing = sorted(set(range(len(class_order))) - set(class_order))
        raise ValueError(
            f'{source} is not a permutation of range({len(class_order)}): '
            f'each class index must appear exactly once (missing: '
            f'{missing[:10]}).')
    return [int(i) for i in class_order]
