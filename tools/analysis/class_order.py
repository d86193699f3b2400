"""Derive a class order that puts similar classes next to each other.

FiGKD's wavelet bands depend on which classes are neighbours along the class
axis. This tool orders the classes of a trained teacher so that similar ones
are contiguous, and writes a JSON file that ``FiGKDLoss(class_order=PATH)``
reads::

    {"class_order": [...], "method": "weights", "source": "CKPT", ...}

Similarity between classes comes from

* ``--method weights`` (default): cosine similarity of the rows of the
  teacher's last linear layer (the last 2-D weight under ``head.``; the mean
  row is subtracted first, since a vector added to every row shifts all
  logits of a sample alike and the softmax ignores it; ``--no-center`` keeps
  it). No data is needed.
* ``--method confusion``: the teacher's confusion on a split (``--split``):
  the soft confusion ``P[i, j]`` = mean predicted probability of class ``j``
  over the images of class ``i`` (``--confusion hard`` counts arg-max
  predictions instead), row-normalised and symmetrised.

The order is the leaf order of a hierarchical clustering
(``scipy.cluster.hierarchy.linkage(..., optimal_ordering=True)`` on
``1 - similarity``, ``leaves_list``): the members of every cluster of the
dendrogram are contiguous, and adjacent leaves are as similar as possible.

    python tools/analysis/class_order.py CONFIG CKPT --out order.json
        [--method weights|confusion] [--split test] [--linkage average]

CKPT is the teacher's checkpoint or a distillation checkpoint (its
``teacher.*`` weights; ``--model student`` takes ``architecture.*``).
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


# ----------------------------------------------------------------- maths
def cosine_similarity_matrix(rows: np.ndarray, center: bool = False
                             ) -> np.ndarray:
    """(C, C) cosine similarity of the rows of a (C, D) matrix."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f'expected a (C, D) matrix, got shape {x.shape}.')
    if center:
        x = x - x.mean(0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.maximum(norms, 1e-12)
    return np.clip(x @ x.T, -1.0, 1.0)


def order_from_similarity(sim: np.ndarray, method: str = 'average'
                          ) -> List[int]:
    """Leaf order of a hierarchical clustering of a similarity matrix.

    ``sim`` is a (C, C) similarity (larger = more alike; cosine-like, at most
    1 on the diagonal); it is symmetrised, turned into the distance
    ``max(sim) - sim`` with a zero diagonal, clustered with ``linkage(method,
    optimal_ordering=True)`` and read off with ``leaves_list``. Returns a
    permutation of ``range(C)`` in which every dendrogram cluster is
    contiguous.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f'similarity must be square, got shape {sim.shape}.')
    if not np.isfinite(sim).all():
        raise ValueError('similarity has non-finite entries.')
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


def order_from_classifier_weights(weight, center: bool = True,
                                  method: str = 'average') -> List[int]:
    """Class order from the (C, D) weight of a linear classifier."""
    weight = np.asarray(
        weight.detach().cpu().double().numpy() if hasattr(weight, 'detach')
        else weight, dtype=np.float64)
    return order_from_similarity(
        cosine_similarity_matrix(weight, center=center), method)


def confusion_matrix(logits, labels, num_classes: Optional[int] = None,
                     kind: str = 'soft') -> np.ndarray:
    """(C, C) confusion: row i sums the predictions for images of class i.

    ``kind='soft'`` sums softmax probabilities, ``'hard'`` arg-max counts.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = num_classes or logits.shape[1]
    conf = np.zeros((num_classes, num_classes))
    if kind == 'soft':
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        np.add.at(conf, labels, p)
    elif kind == 'hard':
        np.add.at(conf, (labels, logits.argmax(1)), 1.0)
    else:
        raise ValueError(f"kind must be 'soft' or 'hard', got {kind!r}.")
    return conf


def confusion_similarity(conf: np.ndarray) -> np.ndarray:
    """Symmetrised, row-normalised confusion, scaled to [0, 1] off the
    diagonal (diagonal 1)."""
    conf = np.asarray(conf, dtype=np.float64)
    rows = conf.sum(1, keepdims=True)
    p = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
    sim = (p + p.T) / 2
    np.fill_diagonal(sim, 0.0)
    top = sim.max()
    if top > 0:
        sim = sim / top
    np.fill_diagonal(sim, 1.0)
    return sim


def order_from_confusion(conf: np.ndarray, method: str = 'average'
                         ) -> List[int]:
    """Class order from a (C, C) confusion matrix (rows: true class)."""
    return order_from_similarity(confusion_similarity(conf), method)


def neighbour_similarity(sim: np.ndarray, order: Sequence[int],
                         cyclic: bool = True) -> float:
    """Mean similarity of classes adjacent in ``order``.

    ``cyclic`` includes the last-first pair: ``mode='periodization'`` treats
    the class axis as a circle.
    """
    order = list(order)
    pairs = list(zip(order[:-1], order[1:]))
    if cyclic and len(order) > 2:
        pairs.append((order[-1], order[0]))
    if not pairs:
        return float('nan')
    sim = np.asarray(sim)
    return float(np.mean([sim[a, b] for a, b in pairs]))


def group_adjacency(order: Sequence[int], groups: Sequence[int]) -> float:
    """Fraction of adjacent pairs (non-cyclic) whose classes share a group
    (e.g. the family of a demo class)."""
    order = list(order)
    if len(order) < 2:
        return float('nan')
    return float(np.mean([groups[a] == groups[b]
                          for a, b in zip(order[:-1], order[1:])]))


def is_permutation(order: Sequence[int], n: Optional[int] = None) -> bool:
    order = list(order)
    n = len(order) if n is None else n
    return sorted(order) == list(range(n))


# --------------------------------------------------------- checkpoints
def classifier_weight(state: dict, prefixes: Sequence[str] = ('teacher.',
                                                              '')
                      ) -> Tuple[str, 'np.ndarray']:
    """The last 2-D weight under ``<prefix>head.`` (first prefix that has
    one): ``(key, (C, D) array)``."""
    for prefix in prefixes:
        found = [k for k, v in state.items()
                 if k.startswith(prefix + 'head.') and k.endswith('weight')
                 and getattr(v, 'dim', lambda: 0)() == 2]
        if found:
            key = found[-1]
            return key, state[key].detach().cpu().double().numpy()
    raise KeyError('no 2-D classifier weight under head. in the checkpoint '
                   f'(prefixes {list(prefixes)}; first keys '
                   f'{list(state)[:5]}).')


def write_order(path: str, order: Sequence[int], method: str, source: str,
                **extra) -> str:
    if not is_permutation(order):
        raise ValueError('order is not a permutation of range(C).')
    data = dict(class_order=[int(i) for i in order], method=method,
                source=source, **extra)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=1)
    return path


def _dataset_groups(cfg, split: str) -> Optional[List[int]]:
    """Families of a demo dataset (class_families.txt), if it has them."""
    try:
        root = cfg[f'{split}_dataloader'].dataset.data_root
    except (KeyError, AttributeError):
        return None
    path = osp.join(str(root), 'class_families.txt')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    return [int(fam) for _, fam in sorted(rows, key=lambda r: int(r[0]))]


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Class order from a trained teacher, for FiGKDLoss.')
    parser.add_argument('config', help='distillation or classifier config')
    parser.add_argument('checkpoint', help='teacher (or distillation) '
                        'checkpoint')
    parser.add_argument('--out', required=True, help='JSON file to write')
    parser.add_argument('--method', default='weights',
                        choices=['weights', 'confusion'])
    parser.add_argument('--model', default='teacher',
                        choices=['teacher', 'student'],
                        help='which model of a distillation checkpoint')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'],
                        help='split for --method confusion')
    parser.add_argument('--confusion', default='soft',
                        choices=['soft', 'hard'])
    parser.add_argument('--linkage', default='average',
                        choices=['average', 'complete', 'single',
                                 'weighted'])
    parser.add_argument('--no-center', action='store_true',
                        help='keep the mean classifier row (weights)')
    parser.add_argument('--max-batches', type=int, default=None)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
    import logit_spectrum as ls

    cfg = ls.load_config(args.config, args.cfg_options)
    prefixes = (ls.TEACHER_PREFIXES if args.model == 'teacher' else
                ls.STUDENT_PREFIXES)
    state = ls.load_state_dict(args.checkpoint)
    extra = dict(config=args.config, model=args.model, linkage=args.linkage)
    if args.method == 'weights':
        key, weight = classifier_weight(state, prefixes)
        sim = cosine_similarity_matrix(weight, center=not args.no_center)
        order = order_from_similarity(sim, args.linkage)
        extra.update(weight_key=key, centered=not args.no_center)
    else:
        teacher_cfg, student_cfg = ls.classifier_configs(cfg)
        model = ls.build_classifier(
            teacher_cfg if args.model == 'teacher' or student_cfg is None
            else student_cfg)
        ls.load_weights(model, state, prefixes, args.checkpoint)
        loader = ls.build_loader(cfg, args.split)
        logits, labels = ls.collect_logits(
            {'m': model}, loader, ls.build_data_preprocessor(cfg),
            ls.resolve_device(args.device), args.max_batches)
        conf = confusion_matrix(logits['m'].numpy(), labels.numpy(),
                                kind=args.confusion)
        sim = confusion_similarity(conf)
        order = order_from_similarity(sim, args.linkage)
        extra.update(split=args.split, confusion=args.confusion,
                     num_samples=int(labels.numel()))
    n = sim.shape[0]
    before = neighbour_similarity(sim, range(n))
    after = neighbour_similarity(sim, order)
    extra.update(num_classes=n, neighbour_similarity=dict(
        dataset_order=before, class_order=after))
    print(f'{n} classes, method {args.method}: mean similarity of adjacent '
          f'classes (cyclic) {before:.4f} in the dataset order, '
          f'{after:.4f} in the derived order')
    groups = _dataset_groups(cfg, args.split)
    if groups is not None and len(groups) == n:
        fam = dict(dataset_order=group_adjacency(range(n), groups),
                   class_order=group_adjacency(order, groups))
        extra['family_adjacency'] = fam
        print(f"adjacent pairs in the same family (class_families.txt): "
              f"{fam['dataset_order']:.3f} in the dataset order, "
              f"{fam['class_order']:.3f} in the derived order")
    write_order(args.out, order, args.method, args.checkpoint, **extra)
    print(f'wrote {args.out}: class_order={order}')
    return dict(class_order=order, method=args.method, **extra)


if __name__ == '__main__':
    main()
