"""Statistics of a comparison over seeds: per recipe and paired.

A seed fixes a run's initialisation and data order, so the per-seed
difference between two recipes cancels much of the seed noise that the
spread of either recipe alone contains: compare recipes by the paired
difference, with a t-interval over the seeds they share.
"""
import math
import statistics
from typing import Dict, Mapping


def summarize(values) -> Dict:
    """n, mean, sample std (ddof=1; nan for one value), min and max."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('no values to summarize.')
    return dict(n=len(values), mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else math.nan,
                min=min(values), max=max(values))


def t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of Student's t with ``dof`` degrees."""
    from scipy.stats import t
    return float(t.ppf(probability, dof))


def paired_difference(values: Mapping[int, float],
                      reference: Mapping[int, float],
                      confidence: float = 0.95) -> Dict:
    """``values[seed] - reference[seed]`` over the seeds both have.

    Returns n, the seeds, mean and sample std of the differences, the
    two-sided ``confidence`` t-interval of their mean (``low``, ``high``;
    nan for fewer than two seeds) and how many seeds are ahead (> 0),
    behind (< 0) and tied.
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}.')
    seeds = sorted(set(values) & set(reference))
    diffs = [float(values[s]) - float(reference[s]) for s in seeds]
    out = dict(n=len(diffs), seeds=seeds, confidence=confidence,
               mean=math.nan, std=math.nan, low=math.nan, high=math.nan,
               ahead=sum(d > 0 for d in diffs),
               behind=sum(d < 0 for d in diffs),
               tied=sum(d == 0 for d in diffs))
    if not diffs:
        return out
    out['mean'] = statistics.fmean(diffs)
    if len(diffs) > 1:
        out['std'] = statistics.stdev(diffs)
        half = (t_quantile((1 + confidence) / 2, len(diffs) - 1)
                * out['std'] / math.sqrt(len(diffs)))
        out['low'], out['high'] = out['mean'] - half, out['mean'] + half
    return out
