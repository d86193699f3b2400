"""A class order that puts similar classes next to each other.

FiGKD's wavelet bands depend on which classes are neighbours along the class
axis. Similarity between classes comes from a classifier's last linear layer
(cosine of its rows, the mean row removed first: a vector added to every row
shifts all logits of a sample alike, which the softmax ignores) or from its
confusion on a split. The order is the leaf order of a hierarchical
clustering (``scipy.cluster.hierarchy.linkage(..., optimal_ordering=True)``
on ``max(similarity) - similarity``): every cluster of the dendrogram is
contiguous and adjacent leaves are as similar as possible. The JSON written
by :func:`write_class_order` is what ``FiGKDLoss(class_order=PATH)`` reads.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np


def cosine_similarity_matrix(rows, center: bool = False) -> np.ndarray:
    """(C, C) cosine similarity of the rows of a (C, D) matrix."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f'expected a (C, D) matrix, got shape {x.shape}.')
    if center:
        x = x - x.mean(0, keepdims=True)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.clip(x @ x.T, -1.0, 1.0)


def _similarity(sim) -> np.ndarray:
    """A (C, C) similarity as float64, or a ValueError saying what is
    wrong."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f'similarity must be square, got shape {sim.shape}.')
    if not np.isfinite(sim).all():
        raise ValueError('similarity has non-finite entries.')
    return sim


def order_from_similarity(sim, method: str = 'average') -> List[int]:
    """Leaf order of a hierarchical clustering of a (C, C) similarity
    (larger = more alike): a permutation of ``range(C)``."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    sim = _similarity(sim)
    n = sim.shape[0]
    if n <= 2:
        return list(range(n))
    sim = (sim + sim.T) / 2
    off = sim[~np.eye(n, dtype=bool)]
    dist = np.maximum(max(off.max(), np.diag(sim).max()) - sim, 0.0)
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method=method,
                   optimal_ordering=True)
    return [int(i) for i in leaves_list(tree)]


def spectral_order(sim) -> List[int]:
    """Spectral seriation (Atkins, Boman and Hendrickson, 1998) of a (C, C)
    similarity: the classes sorted by the Fiedler vector (the eigenvector
    of the second-smallest eigenvalue) of the Laplacian of the similarity
    graph, its weights the similarities shifted to be >= 0. For a similarity
    that falls off with distance along some order (a Robinson matrix), this
    recovers that order up to reversal. Deterministic: ties keep index
    order, and of the two directions the one starting at the lower class
    index is returned."""
    sim = _similarity(sim)
    n = sim.shape[0]
    if n <= 2:
        return list(range(n))
    weights = (sim + sim.T) / 2
    off = ~np.eye(n, dtype=bool)
    weights = np.where(off, weights - min(weights[off].min(), 0.0), 0.0)
    laplacian = np.diag(weights.sum(1)) - weights
    _, vectors = np.linalg.eigh(laplacian)
    fiedler = np.round(vectors[:, 1], 12)  # ties: equal up to rounding
    order = [int(i) for i in np.argsort(fiedler, kind='stable')]
    return order if order[0] < order[-1] else order[::-1]


def order_from_classifier_weights(weight, center: bool = True,
                                  method: str = 'average') -> List[int]:
    """Class order from the (C, D) weight of a linear classifier (numpy or
    torch)."""
    if hasattr(weight, 'detach'):
        weight = weight.detach().cpu().double().numpy()
    return order_from_similarity(
        cosine_similarity_matrix(weight, center=center), method)


def confusion_matrix(logits, labels, num_classes: Optional[int] = None,
                     kind: str = 'soft') -> np.ndarray:
    """(C, C) confusion: row i sums the predictions for images of class i;
    ``kind='soft'`` sums softmax probabilities, ``'hard'`` arg-max counts."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = num_classes or logits.shape[1]
    conf = np.zeros((num_classes, num_classes))
    if kind == 'soft':
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.add.at(conf, labels, p)
    elif kind == 'hard':
        np.add.at(conf, (labels, logits.argmax(1)), 1.0)
    else:
        raise ValueError(f"kind must be 'soft' or 'hard', got {kind!r}.")
    return conf


def confusion_similarity(conf) -> np.ndarray:
    """Symmetrised, row-normalised confusion, scaled to [0, 1] off the
    diagonal (diagonal 1)."""
    conf = np.asarray(conf, dtype=np.float64)
    rows = conf.sum(1, keepdims=True)
    p = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
    sim = (p + p.T) / 2
    np.fill_diagonal(sim, 0.0)
    if sim.max() > 0:
        sim = sim / sim.max()
    np.fill_diagonal(sim, 1.0)
    return sim


def order_from_confusion(conf, method: str = 'average') -> List[int]:
    """Class order from a (C, C) confusion matrix (rows: true class)."""
    return order_from_similarity(confusion_similarity(conf), method)


def neighbour_similarity(sim, order: Sequence[int],
                         cyclic: bool = True) -> float:
    """Mean similarity of classes adjacent in ``order``; ``cyclic`` adds the
    last-first pair (``mode='periodization'`` sees the class axis as a
    circle)."""
    order = list(order)
    pairs = list(zip(order[:-1], order[1:]))
    if cyclic and len(order) > 2:
        pairs.append((order[-1], order[0]))
    if not pairs:
        return float('nan')
    sim = np.asarray(sim)
    return float(np.mean([sim[a, b] for a, b in pairs]))


def group_adjacency(order: Sequence[int], groups: Sequence[int]) -> float:
    """Fraction of adjacent pairs (not cyclic) whose classes share a group,
    e.g. the family of a demo class."""
    order = list(order)
    if len(order) < 2:
        return float('nan')
    return float(np.mean([groups[a] == groups[b]
                          for a, b in zip(order[:-1], order[1:])]))


def read_class_families(data_root) -> Optional[List[int]]:
    """The family of each class of a demo dataset (``class_families.txt``,
    written by :func:`figkd_mmrazor.demo.make_demo_cub`), or None."""
    path = osp.join(str(data_root), 'class_families.txt')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    return [int(fam) for _, fam in sorted(rows, key=lambda r: int(r[0]))]


def write_class_order(path, order: Sequence[int], method: str, source: str,
                      **extra) -> str:
    """Write ``{"class_order": [...], "method": ..., "source": ...}`` (the
    file ``FiGKDLoss(class_order=PATH)`` reads)."""
    order = [int(i) for i in order]
    if sorted(order) != list(range(len(order))):
        raise ValueError('order is not a permutation of range(C).')
    os.makedirs(osp.dirname(osp.abspath(str(path))), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(class_order=order, method=method, source=source,
                       **extra), f, indent=1)
    return str(path)
