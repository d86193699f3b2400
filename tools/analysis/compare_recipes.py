"""Compare training recipes over seeds, paired seed by seed.

    python tools/analysis/compare_recipes.py CONFIG [CONFIG ...]
        --seeds 0 1 2 3 4 [--reference CONFIG] [--work-dir DIR]
        [--jobs N] [--no-replay] [--cfg-options KEY=VALUE ...]
    # on a cluster: print the commands, run them, then collect
    python tools/analysis/compare_recipes.py ... --launcher slurm \\
        --partition P --gpus 8
    python tools/analysis/compare_recipes.py ... --collect

Each (config, seed) is a ``tools/train.py`` run with
``randomness.seed=SEED`` in ``WORK_DIR/<recipe>/seed_<SEED>``; finished runs
with the same config are reused, interrupted ones resumed, and a work dir
holding anything else stops the comparison before it trains. Distillation
runs that share a teacher record it once and replay it (``--no-replay``
turns that off; every run's augmentation is keyed either way, so the
results are the same); a recipe whose teacher cannot be replayed trains it
live. Runs that would pair different teacher checkpoints or training data
(each run's ``run_identity.json``) stop the comparison, and so does a recipe
whose model does not build. The report, ``WORK_DIR/comparison.{md,json,png}``
(an earlier one is moved to ``previous_reports/<time>/``), gives
per recipe the top-1 mean +- std and the paired difference to the reference
(the first config by default) with its 95% t-interval and the seeds ahead.
What it does, exactly: :mod:`figkd_mmrazor.analysis.comparison`.
"""
import argparse
import os.path as osp
import shlex
import sys
import time

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor.analysis import comparison

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(
        description='Compare recipes over seeds: mean +- std per recipe and '
        'the paired difference to a reference.')
    parser.add_argument('configs', nargs='+', help='one config per recipe')
    parser.add_argument('--seeds', type=int, nargs='+', required=True)
    parser.add_argument('--reference', help='the config (or recipe name) '
                        'the others are paired with (default: the first)')
    parser.add_argument('--work-dir', default='work_dirs/compare_recipes')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at a time on this machine, each '
                        'with cpu_count / jobs threads (default 1)')
    parser.add_argument('--no-replay', action='store_true',
                        help='every distillation run computes its teacher '
                        '(same results, slower)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'dist', 'slurm'],
                        help='none: train here; dist / slurm: print the '
                        'tools/dist_train.sh or slurm_train.sh commands')
    parser.add_argument('--gpus', type=int, default=8,
                        help='GPUs per run (dist, slurm)')
    parser.add_argument('--partition', help='Slurm partition (slurm)')
    parser.add_argument('--collect', action='store_true',
                        help='train nothing: report the runs that finished')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='KEY=VALUE for every run (as tools/train.py)')
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    return args


def print_cluster_commands(runs, args):
    states = comparison.check_work_dirs(runs)
    phases = {1: [], 2: []}
    for run in runs:
        state = states[run.work_dir][0]
        if state == 'finished':
            continue
        phase = 2 if comparison.waits_for(run, runs) else 1
        phases[phase].append(comparison.cluster_command(
            run, state == 'unfinished', args.launcher, args.gpus,
            args.partition, osp.relpath(TOOLS)))
    if not phases[1] and not phases[2]:
        print('Every run has finished: collect them with --collect.')
    for phase, commands in phases.items():
        if commands:
            print(f'# phase {phase}' + (' (after phase 1 has finished: '
                                        'these replay its teacher caches)'
                                        if phase == 2 else ''))
            print('\n'.join(commands))
    print('# then: ' + ' '.join(shlex.quote(a) for a in
                                ['python', *sys.argv, '--collect']))


def main():
    args = parse_args()
    start = time.time()
    runs = comparison.plan_runs(args.configs, args.seeds, args.work_dir,
                                args.cfg_options, replay=not args.no_replay)
    if args.launcher != 'none' and not args.collect:
        print_cluster_commands(runs, args)
        return
    if args.collect:
        results = comparison.collect(runs)
    else:
        results = comparison.train_all(
            runs, osp.join(TOOLS, 'train.py'),
            osp.join(args.work_dir, 'logs'), args.jobs, say=print)
    reference = (comparison.recipe_name(args.reference)
                 if args.reference else None)
    summary = comparison.summarize(results, reference)
    meta = comparison.report_meta(
        ' '.join(shlex.quote(a) for a in ['python', *sys.argv]),
        None if args.collect else time.time() - start,
        replay=not args.no_replay, jobs=args.jobs)
    paths = comparison.write_report(summary, meta, args.work_dir)
    print(comparison.format_table(summary))
    print('written: ' + ', '.join(paths.values()))
    if summary['missing']:
        sys.exit(f"{len(summary['missing'])} run(s) missing or failed; "
                 'listed in ' + paths['md'])


if __name__ == '__main__':
    main()
