"""The embedded demo: teacher, student alone, KD, DKD and FiGKD over seeds.

    python tools/demo_study.py          # or: make demo

1. draws the glyph benchmark into ``data/glyphs``
   (:func:`figkd_mmrazor.glyphs.make_glyphs`; kept when it is there and
   matches its manifest);
2. trains the teacher once (``configs/demo/teacher.py``);
3. trains the student alone and with MMRazor KD, MMRazor DKD and FiGKD
   (``configs/demo/{student,kd,dkd,figkd}.py``) for each seed, the
   distillations recording the teacher's answers once and replaying them
   (:mod:`figkd_mmrazor.analysis.comparison`, as
   ``tools/analysis/compare_recipes.py`` does);
4. prints the paired table and writes
   ``work_dirs/demo/comparison.{md,json,png}``.

Every run is a ``tools/train.py`` process with its own work dir under
``work_dirs/demo/``; finished runs are reused, so an interrupted demo
continues where it stopped. ``--epochs`` / ``--teacher-epochs`` change the
schedules, ``--seeds`` the seeds, ``--jobs`` how many runs train at a time
(default 2, one thread each), ``--data-root`` takes any benchmark written by
``make_glyphs`` (the class list and head sizes follow its manifest).

    python tools/demo_study.py --study  # the benchmark study

runs the same tool for the questions three seeds cannot settle: KD, DKD,
FiGKD and the class-order control over more seeds and a longer schedule
(``STUDY``), in ``work_dirs/study``. The control, ``figkd_shuffled``, is
FiGKD with the classes in a random order on the wavelet's axis (one
permutation per seed, :func:`shuffled_order`), so that the letter families
are no longer neighbours; it differs from ``figkd`` in nothing else.

``--recipes`` also takes the class-axis variants (:func:`recipe_options`):
``figkd_teacher_order`` (``class_order='teacher'``), ``figkd_graph``
(``GraphFiGKDLoss`` over ``class_graph='teacher'``), ``kd_std`` and
``figkd_std`` (z-scored logits, tau 2), ``kd_tau6`` (KD at tau 6) and
``figkd_soft_detail`` (the approximation kept, the detail halved).
"""
import argparse
import json
import os
import os.path as osp
import random
import shlex
import sys
import time

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor.analysis import comparison
from figkd_mmrazor.glyphs import (CLASS_NAMES, MANIFEST, GlyphSpec,
                                  make_glyphs, read_manifest)
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs', 'demo')
# recipe -> its config in configs/demo/; the variants share a config and
# differ by the options of recipe_options().
CONFIG_OF = dict(student='student', kd='kd', dkd='dkd', figkd='figkd',
                 figkd_shuffled='figkd', figkd_teacher_order='figkd',
                 kd_tau6='kd', kd_std='figkd', figkd_graph='figkd',
                 figkd_std='figkd', figkd_soft_detail='figkd')
DEFAULT_DATA_ROOT = 'data/glyphs'
# The defaults of the demo, and of the benchmark study (--study).
DEMO = dict(work_dir='work_dirs/demo',
            recipes=['student', 'kd', 'dkd', 'figkd'], seeds=[0, 1, 2],
            epochs=None)
STUDY = dict(work_dir='work_dirs/study',
             recipes=['kd', 'dkd', 'figkd', 'figkd_shuffled'],
             seeds=list(range(9)), epochs=10)
FIGKD_KEY = 'model.distiller.distill_losses.loss_figkd'
CLASS_ORDER_KEY = f'{FIGKD_KEY}.class_order'


def parse_args():
    parser = argparse.ArgumentParser(
        description='Run the embedded FiGKD demo (teacher, student alone, '
        'KD, DKD and FiGKD over seeds on the glyph benchmark), or with '
        '--study the benchmark study.')
    parser.add_argument('--study', action='store_true',
                        help='the benchmark study: the defaults become '
                        f'{STUDY}; options given here still win')
    parser.add_argument('--work-dir', help=f"default: {DEMO['work_dir']}")
    parser.add_argument('--recipes', nargs='+', choices=list(CONFIG_OF),
                        help='what to train; the reference always is '
                        f"(default: {' '.join(DEMO['recipes'])})")
    parser.add_argument('--reference', default='kd', choices=list(CONFIG_OF),
                        help='the recipe the others are paired with '
                        '(default: %(default)s)')
    parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT,
                        help='demo dataset; drawn with the default spec '
                        'when absent (default: %(default)s)')
    parser.add_argument('--seeds', type=int, nargs='+',
                        help=f"default: {' '.join(map(str, DEMO['seeds']))}")
    parser.add_argument('--epochs', type=int,
                        help="the students' epochs (default: the configs')")
    parser.add_argument('--teacher-epochs', type=int,
                        help="the teacher's epochs (default: the config's)")
    parser.add_argument('--jobs', type=int, default=2,
                        help='runs at a time (default: %(default)s)')
    parser.add_argument('--no-replay', action='store_true',
                        help='every distillation computes its teacher '
                        '(same results, slower)')
    args = parser.parse_args()
    for key, value in (STUDY if args.study else DEMO).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.reference not in args.recipes:
        args.recipes = [args.reference, *args.recipes]
    for name in ('epochs', 'teacher_epochs', 'jobs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def epoch_options(epochs):
    """cfg-options giving the demo schedule (schedules/demo.py) ``epochs``:
    one warm-up epoch, cosine over the rest, validation at the end."""
    return [f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.1.T_max={max(1, epochs - 1)}',
            f'param_scheduler.1.end={max(2, epochs)}']


def dataset_options(data_root, spec, distill):
    """cfg-options pointing a demo config at another glyph benchmark."""
    if osp.abspath(data_root) == osp.join(ROOT, DEFAULT_DATA_ROOT) and \
            spec == GlyphSpec():
        return []
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    names = osp.join(data_root, CLASS_NAMES)
    heads = (['model.architecture.head', 'model.teacher.head'] if distill
             else ['model.head'])
    return ([f'{key}.dataset.data_root={data_root}' for key in loaders] +
            [f'{key}.dataset.classes={names}' for key in loaders] +
            [f'data_preprocessor.num_classes={spec.num_classes}'] +
            [f'{head}.num_classes={spec.num_classes}' for head in heads])


def shuffled_order(num_classes, seed):
    """The control's class order for one seed: a permutation of
    ``range(num_classes)`` drawn from ``random.Random(seed)`` (the same on
    every Python 3), as the cfg-option value ``[i,j,...]``."""
    order = list(range(num_classes))
    random.Random(seed).shuffle(order)
    return '[' + ','.join(map(str, order)) + ']'


def recipe_options(recipe, seed, num_classes):
    """What a variant recipe sets on top of its config (CONFIG_OF)."""
    if recipe == 'figkd_shuffled':  # the class-order control
        return [f'{CLASS_ORDER_KEY}={shuffled_order(num_classes, seed)}']
    if recipe == 'figkd_teacher_order':  # figkd_mmrazor.class_axis
        return [f'{CLASS_ORDER_KEY}=teacher']
    if recipe == 'kd_tau6':
        # FiGKD's level-1 Haar detail has about 1/sqrt(2) of the logits'
        # spread, i.e. KD's tau 4 acts like 4 * sqrt(2) = 5.7 on it.
        return ['model.distiller.distill_losses.loss_kd.tau=6.0']
    if recipe == 'figkd_graph':  # FiGKD over the teacher's class graph
        return [f'{FIGKD_KEY}.type=GraphFiGKDLoss',
                f'{FIGKD_KEY}.class_graph=teacher']
    # On z-scored logits (Sun et al., 2024; their base temperature 2): KD,
    # and FiGKD's paper setting.
    if recipe == 'kd_std':
        return [f'{FIGKD_KEY}.low_weight=1.0', f'{FIGKD_KEY}.tau=2.0',
                f'{FIGKD_KEY}.standardize=True']
    if recipe == 'figkd_std':
        return [f'{FIGKD_KEY}.tau=2.0', f'{FIGKD_KEY}.standardize=True']
    if recipe == 'figkd_soft_detail':  # the other direction: keep the
        # approximation, halve the detail (KD with the detail softened)
        return [f'{FIGKD_KEY}.low_weight=1.0', f'{FIGKD_KEY}.high_weights=0.5']
    return []


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def main():
    args = parse_args()
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    data_root = osp.abspath(args.data_root)
    spec = (GlyphSpec(**read_manifest(data_root)['spec'])
            if osp.isfile(osp.join(data_root, MANIFEST))
            else GlyphSpec())
    make_glyphs(data_root, spec, progress=sys.stderr.isatty())
    print(f'Demo data: {data_root}, {spec.num_classes} classes, '
          f'{spec.train_per_class} train + {spec.test_per_class} test images '
          f'per class, {spec.size} px', flush=True)
    train = osp.join(ROOT, 'tools', 'train.py')

    def options(distill, epochs):
        return (dataset_options(data_root, spec, distill) +
                (epoch_options(epochs) if epochs else []))

    # Where configs/demo/{kd,dkd,figkd}.py look for it, with its seed.
    teacher = comparison.Run('teacher', osp.join(CONFIGS, 'teacher.py'),
                             Config.fromfile(osp.join(
                                 CONFIGS, 'teacher.py')).randomness.seed,
                             osp.join(work_dir, 'teacher'),
                             tuple(options(False, args.teacher_epochs)))
    logs = osp.join(work_dir, 'logs')
    result, = comparison.train_all([teacher], train, logs, cwd=ROOT,
                                   say=print)
    if result['status'] == 'failed':
        sys.exit(f"the teacher failed to train ({result['error']})")
    teacher_ckpt = last_checkpoint(teacher.work_dir)

    def plan(recipes, distill):
        if not recipes:
            return []
        return comparison.plan_runs(
            [osp.join(CONFIGS, f'{CONFIG_OF[r]}.py') for r in recipes],
            args.seeds, work_dir,
            ([f'model.teacher_ckpt={teacher_ckpt}'] if distill else []) +
            options(distill, args.epochs), names=recipes,
            replay=distill and not args.no_replay,
            run_options=lambda recipe, seed: recipe_options(
                recipe, seed, spec.num_classes))

    runs = (plan([r for r in args.recipes if r == 'student'], False) +
            plan([r for r in args.recipes if r != 'student'], True))
    print(f'{len(runs)} runs ({", ".join(args.recipes)} x seeds '
          f'{" ".join(map(str, args.seeds))}), {args.jobs} at a time, '
          f'teacher {"replayed" if not args.no_replay else "live"}',
          flush=True)
    results = comparison.train_all(runs, train, logs, args.jobs, cwd=ROOT,
                                   say=print)
    summary = comparison.summarize(results, reference=args.reference)
    meta = comparison.report_meta(
        ' '.join(shlex.quote(a) for a in ['python', *sys.argv]),
        time.time() - start, teacher_top1=result['top1'],
        data_root=data_root, replay=not args.no_replay, jobs=args.jobs,
        threads_per_run=max(1, (os.cpu_count() or 1) // args.jobs))
    paths = comparison.write_report(summary, meta, work_dir)
    wall = time.time() - start
    print(f"\n{'Study' if args.study else 'Demo'} finished in "
          f'{int(wall // 60)}:{int(wall % 60):02d}; '
          f"teacher top-1 {result['top1']:.2f}. Student top-1 on the test "
          'split:\n')
    print(comparison.format_table(summary))
    print()
    print(comparison.format_seed_table(summary))
    print('\nwritten: ' + ', '.join(paths.values()))
    if summary['missing']:
        sys.exit(f"{len(summary['missing'])} run(s) failed; see "
                 f"{paths['md']}")


if __name__ == '__main__':
    main()
