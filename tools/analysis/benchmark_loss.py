"""Cost of FiGKDLoss forward + backward relative to MMRazor's KLDivergence.

Both run in the same process, interleaved, on the same logits; the table
shows the median time per call and the ratio to KLDivergence (and to ptwt's
transform when ptwt is installed). Ratios are what to compare across
machines; absolute times depend on the machine and its load.

    python tools/analysis/benchmark_loss.py [--threads 1] [--batch 256]
        [--classes 200 1000] [--wavelets haar db4 sym8] [--levels 1 2 3]
"""
import argparse
import statistics
import time

import torch

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.losses import FiGKDLoss
from mmrazor.models import KLDivergence


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


def ptwt_step(wavelet, level, student, teacher):
    """The same band-weighted KD built on ptwt's transform, if installed.

    ptwt has no 'periodization' mode; it runs 'symmetric', which costs it
    no more than periodization would.
    """
    try:
        import ptwt
    except ImportError:
        return None
    tau = 4.0

    def detail(x):
        coeffs = ptwt.wavedec(x, wavelet, level=level, mode='symmetric')
        coeffs = [torch.zeros_like(coeffs[0])] + list(coeffs[1:])
        return ptwt.waverec(coeffs, wavelet)[..., :x.shape[-1]]

    def step():
        student.grad = None
        s, t = detail(student), detail(teacher)
        loss = torch.nn.functional.kl_div(
            torch.log_softmax(s / tau, 1), torch.softmax(t / tau, 1),
            reduction='batchmean') * tau**2
        loss.backward()
    return step


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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {torch.get_num_threads()} thread(s), '
          f'batch {args.batch}, fp32, CPU, median of {args.repeats}')
    print('| classes | wavelet | level | FiGKD ms | KLDivergence ms | '
          'FiGKD / KD | FiGKD / ptwt |')
    print('|---|---|---|---|---|---|---|')
    gen = torch.Generator().manual_seed(0)
    for classes in args.classes:
        student = torch.randn(args.batch, classes, generator=gen,
                              requires_grad=True)
        teacher = torch.randn(args.batch, classes, generator=gen)
        kd = fwd_bwd(KLDivergence(tau=4.0), student, teacher)
        for wavelet in args.wavelets:
            for level in args.levels:
                figkd = fwd_bwd(FiGKDLoss(wavelet=wavelet, level=level),
                                student, teacher)
                reference = ptwt_step(wavelet, level, student, teacher)
                # Interleave so that load changes hit all alike.
                t_figkd, t_kd, t_ptwt = [], [], []
                for _ in range(5):
                    t_figkd.append(median_time(figkd, args.repeats // 5))
                    t_kd.append(median_time(kd, args.repeats // 5))
                    if reference:
                        t_ptwt.append(median_time(reference,
                                                  args.repeats // 5))
                f, k = statistics.median(t_figkd), statistics.median(t_kd)
                vs_ptwt = (f'{f / statistics.median(t_ptwt):.2f}x'
                           if t_ptwt else 'ptwt not installed')
                print(f'| {classes} | {wavelet} | {level} | {f * 1e3:.3f} | '
                      f'{k * 1e3:.3f} | {f / k:.2f}x | {vs_ptwt} |',
                      flush=True)


if __name__ == '__main__':
    main()
