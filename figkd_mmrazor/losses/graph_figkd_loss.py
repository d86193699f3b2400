"""FiGKD over the teacher's class graph instead of the class index axis."""
import json
import numbers
import os
from typing import Optional

import numpy as np
import torch
from mmrazor.registry import MODELS

from .. import class_axis
from .figkd_loss import FiGKDLoss, refuse_other_axis


def graph_band_operator(similarity, low_bands: int, low_weight: float,
                        high_weight: float) -> torch.Tensor:
    """The (C, C) float64 map ``U diag(w) U^T`` of the graph Fourier basis.

    ``U``: the eigenvectors of the combinatorial Laplacian ``D - W`` of the
    class graph (``W``: the similarity, symmetrised, shifted to be >= 0, zero
    diagonal), smoothest first; ``w``: ``low_weight`` for the ``low_bands``
    smoothest (the first is the constant vector: the logits' mean), and
    ``high_weight`` for the rest, the differences between similar classes.
    With both weights 1 it is the identity.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    n = sim.shape[0]
    if not 1 <= low_bands < n:
        raise ValueError(f'low_bands must be in 1..{n - 1} for {n} classes, '
                         f'got {low_bands}.')
    off = ~np.eye(n, dtype=bool)
    weights = (sim + sim.T) / 2
    weights = np.where(off, weights - min(weights[off].min(), 0.0), 0.0)
    values, vectors = np.linalg.eigh(np.diag(weights.sum(1)) - weights)
    if np.isclose(values[low_bands - 1], values[low_bands], rtol=1e-9,
                  atol=1e-12):
        raise ValueError(
            f'the graph frequencies {low_bands - 1} and {low_bands} are '
            'equal, so the low band is not defined by low_bands='
            f'{low_bands}; choose another low_bands.')
    band = np.full(n, float(high_weight))
    band[:low_bands] = low_weight
    return torch.from_numpy((vectors * band) @ vectors.T)


def load_class_graph(class_graph) -> np.ndarray:
    """A (C, C) similarity from a matrix, a JSON file holding
    ``{"similarity": [[...], ...]}`` or the teacher
    (:mod:`figkd_mmrazor.class_axis`), checked."""
    if isinstance(class_graph, str) and class_graph == class_axis.TEACHER:
        raise ValueError(class_axis.UNRESOLVED.format(key='class_graph'))
    if class_axis.is_from_teacher(class_graph):
        return class_axis.from_teacher(class_graph)
    source = 'class_graph'
    if isinstance(class_graph, (str, os.PathLike)):
        source = str(class_graph)
        if not os.path.isfile(source):
            raise FileNotFoundError(
                f'class_graph file {source} does not exist; give a (C, C) '
                'similarity or a JSON file {"similarity": [[...]]}.')
        with open(source) as f:
            class_graph = json.load(f)
        if isinstance(class_graph, dict):
            class_graph = class_graph.get('similarity')
    try:
        sim = np.asarray(class_graph, dtype=np.float64)
    except (TypeError, ValueError):
        sim = np.zeros(0)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2 \
            or not np.isfinite(sim).all():
        raise ValueError(f'{source} must be a finite square (C, C) '
                         f'similarity matrix, C >= 2; got shape {sim.shape}.')
    return sim


@MODELS.register_module()
class GraphFiGKDLoss(FiGKDLoss):
    """FiGKD's low / high split over a class graph, free of any class order.

    The band weighting is ``logits @ U diag(w) U^T`` with ``U`` the graph
    Fourier basis of ``class_graph`` (:func:`graph_band_operator`): the low
    band holds what is smooth over similar classes, the high band the
    differences between similar classes. The rest (temperature, distance,
    reduction, ``standardize``, float32 and the finiteness check) is
    :class:`FiGKDLoss`'s; its wavelet settings and ``class_order`` are not
    used. With ``low_weight=1, high_weights=1`` the loss is MMRazor's
    ``KLDivergence(tau)``.

    Args:
        class_graph (str | array): The (C, C) class similarity, a JSON
            file ``{"similarity": [[...]]}``, or ``'teacher'``: the cosine
            similarity of the teacher classifier's rows
            (:mod:`figkd_mmrazor.class_axis`). Kept in the checkpoints; a
            resumed run must have the same graph.
        low_bands (int, optional): How many of the smoothest graph
            frequencies form the low band. Defaults to ``C // 2`` (as many
            as a one-level Haar transform keeps in its approximation).
        low_weight (float): Weight of the low band. Defaults to 0.0.
        high_weights (float): Weight of the high band. Defaults to 1.0.
        **kwargs: Those of :class:`FiGKDLoss` (``tau``, ``loss_weight``,
            ``distance``, ``reduction``, ``teacher_detach``,
            ``standardize``).
    """

    def __init__(self, class_graph, low_bands: Optional[int] = None,
                 low_weight: float = 0.0, high_weights: float = 1.0,
                 **kwargs) -> None:
        if not isinstance(high_weights, numbers.Real):
            raise ValueError('GraphFiGKDLoss has one high band: give '
                             f'high_weights as one number, not '
                             f'{high_weights!r}.')
        kwargs.update(level=1, class_order=None)
        super().__init__(low_weight=low_weight, high_weights=high_weights,
                         **kwargs)
        similarity = load_class_graph(class_graph)
        self.register_buffer('class_graph', torch.from_numpy(similarity))
        self.register_load_state_dict_pre_hook(
            refuse_other_axis('class_graph'))
        num_classes = similarity.shape[0]
        self.low_bands = num_classes // 2 if low_bands is None else low_bands
        self.graph_operator = graph_band_operator(
            similarity, self.low_bands, self.low_weight,
            self.high_weights[0])

    def _operator(self, num_classes: int, device) -> torch.Tensor:
        if num_classes != self.class_graph.shape[0]:
            raise ValueError(
                f'class_graph has {self.class_graph.shape[0]} classes but the '
                f'logits have {num_classes}; give the similarity of these '
                'classes.')
        key = (num_classes, device)
        if key not in self._operators:
            self._operators[key] = self.graph_operator.to(device,
                                                          torch.float32)
        return self._operators[key]
