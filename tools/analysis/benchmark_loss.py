"""Cost of FiGKDLoss forward + backward relative to MMRazor's KLDivergence.

All run in the same process, interleaved, on the same logits; the table
shows the median time per call and the ratios to KLDivergence, to the same
loss computed level by level (``figkd_mmrazor.wavelets.weighted_bands``,
what FiGKDLoss runs above ``OPERATOR_MAX_CLASSES`` classes) and to ptwt's
transform when ptwt is installed. Ratios are what to compare across
machines; absolute times depend on the machine and its load.

    python tools/analysis/benchmark_loss.py [--threads 1] [--batch 256]
        [--classes 200 1000] [--wavelets haar db4 sym8] [--levels 1 2 3]
        [--json OUT.json]
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

import torch

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.analysis.comparison import report_meta
from figkd_mmrazor.losses import FiGKDLoss
from figkd_mmrazor.wavelets import weighted_bands
from mmrazor.models import KLDivergence

TAU = 4.0


def median_time(fn, repeats, warmup=10):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fwd_bwd(loss, student, teacher):
    def step():
        student.grad = None
        loss(student, teacher).backward()
    return step


def kl_step(transform, student, teacher):
    """FiGKD's default loss (KL at TAU) on the bands ``transform`` gives."""
    def step():
        student.grad = None
        s, t = transform(student), transform(teacher)
        loss = torch.nn.functional.kl_div(
            torch.log_softmax(s / TAU, 1), torch.softmax(t / TAU, 1),
            reduction='batchmean') * TAU**2
        loss.backward()
    return step


def level_by_level_step(wavelet, level, student, teacher):
    return kl_step(
        lambda x: weighted_bands(x, wavelet, 'periodization', 0.0,
                                 [1.0] * level), student, teacher)


def ptwt_step(wavelet, level, student, teacher):
    """The same band-weighted KD built on ptwt's transform, if installed.

    ptwt has no 'periodization' mode; it runs 'symmetric', which costs it
    no more than periodization would.
    """
    try:
        import ptwt
    except ImportError:
        return None

    def detail(x):
        coeffs = ptwt.wavedec(x, wavelet, level=level, mode='symmetric')
        coeffs = [torch.zeros_like(coeffs[0])] + list(coeffs[1:])
        return ptwt.waverec(coeffs, wavelet)[..., :x.shape[-1]]

    return kl_step(detail, student, teacher)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    parser.add_argument('--batch', type=int, default=256)
    parser.add_argument('--classes', type=int, nargs='+', default=[200, 1000])
    parser.add_argument('--wavelets', nargs='+',
                        default=['haar', 'db4', 'sym8'])
    parser.add_argument('--levels', type=int, nargs='+', default=[1, 2, 3])
    parser.add_argument('--repeats', type=int, default=50)
    parser.add_argument('--json', help='also write the table, with the '
                        'command, date and machine, here')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} thread(s), '
          f'batch {args.batch}, fp32, CPU, median of {args.repeats}')
    print('| classes | wavelet | level | FiGKD ms | KLDivergence ms | '
          'FiGKD / KD | FiGKD / level by level | FiGKD / ptwt |')
    print('|---|---|---|---|---|---|---|---|')
    rows = []
    gen = torch.Generator().manual_seed(0)
    for classes in args.classes:
        student = torch.randn(args.batch, classes, generator=gen,
                              requires_grad=True)
        teacher = torch.randn(args.batch, classes, generator=gen)
        for wavelet in args.wavelets:
            for level in args.levels:
                steps = {
                    'figkd': fwd_bwd(
                        FiGKDLoss(tau=TAU, wavelet=wavelet, level=level),
                        student, teacher),
                    'kd': fwd_bwd(KLDivergence(tau=TAU), student, teacher),
                    'levels': level_by_level_step(wavelet, level, student,
                                                  teacher),
                    'ptwt': ptwt_step(wavelet, level, student, teacher)}
                steps = {k: v for k, v in steps.items() if v is not None}
                # Interleave so that load changes hit all alike.
                times = {name: [] for name in steps}
                for _ in range(5):
                    for name, step in steps.items():
                        times[name].append(
                            median_time(step, args.repeats // 5))
                ms = {k: statistics.median(v) for k, v in times.items()}
                rows.append(dict(classes=classes, wavelet=wavelet,
                                 level=level,
                                 ms={k: v * 1e3 for k, v in ms.items()}))
                vs_ptwt = (f"{ms['figkd'] / ms['ptwt']:.2f}x"
                           if 'ptwt' in ms else 'ptwt not installed')
                print(f"| {classes} | {wavelet} | {level} | "
                      f"{ms['figkd'] * 1e3:.3f} | {ms['kd'] * 1e3:.3f} | "
                      f"{ms['figkd'] / ms['kd']:.2f}x | "
                      f"{ms['figkd'] / ms['levels']:.2f}x | {vs_ptwt} |",
                      flush=True)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        meta = report_meta(' '.join(['python'] + sys.argv),
                           threads=torch.get_num_threads(), batch=args.batch,
                           repeats=args.repeats)
        with open(args.json, 'w') as f:
            json.dump(dict(meta, rows=rows), f, indent=2)


if __name__ == '__main__':
    main()
