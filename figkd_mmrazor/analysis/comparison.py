"""A comparison of training recipes over seeds: its runs and its report.

A comparison is a list of configs (recipes) and a list of seeds. Each
(config, seed) is one ``tools/train.py`` run with
``randomness.seed=SEED`` in ``WORK_ROOT/<recipe>/seed_<SEED>``, where
``<recipe>`` is the config's path under ``configs/`` without ``.py``
(``kd/cub_r50_r18``). A run that finished with the same config in that work
dir is reused; one that stopped part-way is resumed (``--resume``); a work
dir that holds anything else is left alone and the comparison refuses to
start. Results are read from what mmengine writes
(``<timestamp>/vis_data/scalars.json``), so runs trained elsewhere (a
cluster, by the printed ``dist_train.sh`` / ``slurm_train.sh`` commands) are
collected the same way.

With teacher replay, the distillation runs that share a teacher, its
checkpoint, the training data and the teacher cache settings share one
teacher cache (:mod:`figkd_mmrazor.replay`), in
``WORK_ROOT/teacher_cache/<fingerprint>``: the first such run records the
teacher's answers, every other run replays them and skips the teacher's
forward pass. Every run of a comparison, with a cache or without (the
student alone, or ``--no-replay``), has its augmentation keyed by
(data seed, epoch, sample) (:mod:`figkd_mmrazor.replay.keyed_views`), the
data seed being the cache's (``teacher_cache.data_seed``, default 0), not
the run's seed: the seeds vary the initialisation and the data order, while
every run sees the same augmented views. So the recipes differ only in what
they are, and a comparison without replay trains the same runs, bit for
bit, as one with it, only slower. A recipe whose teacher cannot be replayed
(feature distillation, say) trains with its teacher live, and the report
says so once.

One teacher and one training set per comparison: every run's identity (the
sha256 of its teacher checkpoint and of its training data, see
:mod:`figkd_mmrazor.replay.fingerprint`) is written into its work dir as
``run_identity.json`` when the comparison plans it, and a comparison whose
runs (earlier ones included) would differ in either refuses, naming them.
Every recipe's model is built (on the CPU, without weights) when the
comparison is planned, so a typo in a config stops it before anything
trains.

The report (:func:`summarize`, :func:`write_report`) gives per recipe the
mean +- sample std of the final top-1 over seeds, and the paired difference
to a reference recipe (:mod:`.paired`) with its 95% t-interval and the
number of seeds ahead, as markdown, JSON and PNG, with the command, machine,
date and versions.
"""
import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.logging import print_log

from .paired import paired_difference, summarize as summarize_values

TOP1 = 'accuracy/top1'
TEACHER_TOP1 = 'teacher.accuracy/top1'
# Settings of the teacher cache that differ between a recording run and a
# replaying one without changing what they compute (a replay equals its
# live twin).
CACHE_KEYS = ('model.teacher_cache', )


class ComparisonError(RuntimeError):
    """A comparison cannot start or could not finish; the message says
    what to change."""


@dataclasses.dataclass
class Run:
    """One (config, seed) of a comparison."""
    recipe: str
    config: str
    seed: int
    work_dir: str
    options: tuple = ()  # cfg-options ('key=value') of every run
    cache_dir: Optional[str] = None  # the teacher cache it shares
    records: bool = False  # writes the cache; its group waits for it
    # Keyed augmentation for a run without a cache (a cache keys its own).
    data_seed: Optional[int] = None
    # Why its teacher runs live although replay was asked for.
    live_teacher: Optional[str] = None
    identity: Optional[dict] = None  # teacher and data sha256 (planned)

    @property
    def cfg_options(self) -> List[str]:
        options = [f'randomness.seed={self.seed}', *self.options]
        if self.data_seed is not None:
            options.append(f'keyed_augmentation.data_seed={self.data_seed}')
        return options


# ------------------------------------------------------------ planning
def recipe_name(config: str) -> str:
    """``configs/kd/cub_r50_r18.py`` -> ``kd/cub_r50_r18``; a config outside
    a ``configs`` folder: its file name without ``.py``."""
    parts = osp.normpath(osp.abspath(config)).split(os.sep)
    stem = osp.splitext(parts[-1])[0]
    if 'configs' in parts[:-1]:
        at = len(parts) - 1 - parts[::-1].index('configs')
        return '/'.join(parts[at + 1:-1] + [stem])
    return stem


def parse_cfg_options(options: Sequence[str]) -> dict:
    """``['a.b=1', ...]`` as mmengine's ``--cfg-options`` reads them."""
    from mmengine.config import DictAction
    if not options:
        return {}
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    return parser.parse_args(['--o', *options]).o


def run_config(run: Run, with_cache: bool = True):
    """The config ``tools/train.py`` builds for ``run`` (before the
    Runner): the file, the cfg-options, the work dir and the cache."""
    from mmengine.config import Config

    from .. import class_axis
    from ..replay import keyed_views, settings_of, use_teacher_cache
    cfg = Config.fromfile(run.config)
    cfg.merge_from_dict(parse_cfg_options(run.cfg_options))
    cfg.work_dir = run.work_dir
    cfg = keyed_views.apply_to_config(class_axis.apply_to_config(cfg))
    if with_cache and run.cache_dir:
        use_teacher_cache(cfg, settings_of(cfg, run.cache_dir))
    return cfg


def plan_runs(configs: Sequence[str], seeds: Sequence[int], work_root: str,
              options: Sequence[str] = (), replay: bool = True,
              names: Optional[Sequence[str]] = None,
              run_options: Optional[Callable[[str, int], Sequence[str]]] = None
              ) -> List[Run]:
    """The runs of a comparison, in the order they are trained: config by
    config, seed by seed. ``names`` are the recipes' names (default:
    :func:`recipe_name`; one config may serve two recipes under two names);
    ``run_options(recipe, seed)`` adds cfg-options of one run, after
    ``options`` (a control's per-seed setting, for example). With
    ``replay``, distillation runs get their teacher cache, and the first
    unfinished run of each cache records it unless the cache is complete.
    Every other run gets the keyed
    augmentation a cache would give it (``keyed_augmentation.data_seed``),
    so all runs of a comparison see the same views, and a comparison
    without replay trains the same runs as one with it."""
    if not configs or not seeds:
        raise ComparisonError('give at least one config and one seed.')
    if len(set(seeds)) != len(seeds):
        raise ComparisonError(f'--seeds has repeats: {list(seeds)}.')
    names = list(names or [recipe_name(c) for c in configs])
    for config in configs:
        if not osp.isfile(config):
            raise ComparisonError(f'config {config} does not exist.')
    if len(set(names)) != len(names):
        raise ComparisonError(f'two configs have the same recipe name: '
                              f'{names}. Give each recipe its own config.')
    work_root = osp.abspath(work_root)
    runs = [Run(name, config, seed,
                osp.join(work_root, name, f'seed_{seed}'),
                (*options, *(run_options(name, seed) if run_options else ())))
            for config, name in zip(configs, names) for seed in seeds]
    check_recipes_build(runs)
    recording = set()
    for run in runs:
        cfg = run_config(run, with_cache=False)
        if replay:
            assign_teacher_cache(run, cfg, osp.join(work_root,
                                                    'teacher_cache'),
                                 recording)
        if run.cache_dir is None:
            run.data_seed = int((cfg.get('teacher_cache') or {}).get(
                'data_seed', 0))
        if run.identity is None:
            run.identity = identity_of(cfg)
    check_identities(runs)
    return runs


def check_recipes_build(runs: Sequence[Run]) -> None:
    """Build each recipe's model (first seed's config, on the CPU, without
    loading weights), so a config error stops the comparison before any
    run trains."""
    from mmrazor.registry import MODELS

    from ..preflight import build_on_cpu
    for run in {run.recipe: run for run in reversed(runs)}.values():
        try:
            cfg = run_config(run, with_cache=False)
            model = cfg.model
            if 'teacher_ckpt' in model:
                model.teacher_ckpt = None
            if cfg.get('data_preprocessor') is not None:
                model.setdefault('data_preprocessor', cfg.data_preprocessor)
            build_on_cpu(MODELS, model, cfg.get('default_scope') or
                         'mmrazor')
        except Exception as err:  # any error of a config: report it all
            raise ComparisonError(
                f'The model of recipe {run.recipe} ({run.config}) does not '
                f'build: {type(err).__name__}: {err}\nFix the config; '
                'nothing was trained.') from err


def assign_teacher_cache(run: Run, cfg, cache_root: str,
                         recording: set) -> None:
    """Give a distillation run the teacher cache of its fingerprint; the
    first unfinished run of an incomplete cache records it."""
    from ..config_facts import is_distillation
    from ..replay import SETTINGS, NotReplayableError, decide
    from ..replay.fingerprint import fingerprint
    if not is_distillation(cfg):
        return
    settings = dict(SETTINGS, **(cfg.get('teacher_cache') or {}))
    try:
        wanted = fingerprint(cfg, settings)
    except NotReplayableError as err:
        run.live_teacher = str(err)
        return
    run.identity = identity_of(cfg, wanted)
    text = json.dumps(wanted, sort_keys=True, default=str)
    run.cache_dir = osp.join(
        cache_root, hashlib.sha256(text.encode()).hexdigest()[:12])
    if run.cache_dir in recording or run_state(run)[0] == 'finished':
        return
    mode, _ = decide(run.cache_dir, wanted, int(cfg.train_cfg.max_epochs),
                     has_checkpoints(run))
    if mode == 'record':
        run.records = True
        recording.add(run.cache_dir)


# ------------------------------------------------- one teacher, one dataset
IDENTITY = 'run_identity.json'


def identity_of(cfg, fingerprint: Optional[dict] = None) -> dict:
    """What a run learns from: its teacher checkpoint (path and sha256;
    None for a student alone) and its training data's fingerprint. What is
    not on this machine yet (a teacher still to train, data elsewhere) is
    None, and filled in by a later plan."""
    from ..config_facts import is_distillation
    from ..replay.fingerprint import (data_fingerprint, teacher_sha256,
                                      train_dataset)
    teacher = (cfg.model.get('teacher_ckpt') if is_distillation(cfg)
               else None)
    if fingerprint is not None:
        return dict(teacher_checkpoint=teacher,
                    teacher_sha256=fingerprint['teacher_checkpoint_sha256'],
                    train_data=fingerprint['train_data'])
    here = teacher and ('://' in teacher or osp.isfile(teacher))
    data_root = train_dataset(cfg).get('data_root')
    return dict(teacher_checkpoint=teacher,
                teacher_sha256=teacher_sha256(teacher) if here else None,
                train_data=data_fingerprint(train_dataset(cfg))
                if data_root is None or osp.isdir(data_root) else None)


def check_identities(runs: Sequence[Run]) -> None:
    """Refuse a comparison whose runs learn from different teachers or
    data (an earlier run's identity is the one in its work dir); write the
    identity of every run that has none yet."""
    stored = {}
    for run in runs:
        path = osp.join(run.work_dir, IDENTITY)
        if osp.isfile(path):
            with open(path) as f:
                stored[run.work_dir] = json.load(f)
            run.identity = dict(run.identity, **{
                k: v for k, v in stored[run.work_dir].items()
                if v is not None})
    for key, what in (('teacher_sha256', 'teacher checkpoints'),
                      ('train_data', 'training data')):
        groups = {}
        for run in runs:
            value = run.identity.get(key)
            if value is not None:
                groups.setdefault(json.dumps(value, sort_keys=True),
                                  []).append(run)
        if len(groups) > 1:
            listed = '\n'.join(
                f'  {value[:90]}: ' + ', '.join(
                    f'{r.recipe} seed {r.seed}' for r in members)
                for value, members in groups.items())
            raise ComparisonError(
                f'These runs would be paired but learn from different '
                f'{what} (the identity in each work dir, {IDENTITY}, is '
                f'what it was trained with):\n{listed}\nRestore the '
                'teacher checkpoint or data the earlier runs used, or '
                'compare in another --work-dir.')
    for run in runs:
        if stored.get(run.work_dir) != run.identity:
            path = osp.join(run.work_dir, IDENTITY)
            os.makedirs(run.work_dir, exist_ok=True)
            with open(path, 'w') as f:
                json.dump(run.identity, f, indent=1, sort_keys=True)


# -------------------------------------------------------- a run's state
def has_checkpoints(run: Run) -> bool:
    from ..runs import checkpoints_in
    return bool(checkpoints_in(run.work_dir))


def saved_run_config(run: Run) -> Optional[dict]:
    """The config mmengine saved in the run's work dir, read as data (it is
    not executed), or None."""
    from ..runs import saved_config
    path = osp.join(run.work_dir, osp.basename(run.config))
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return saved_config(f.read())


def config_differences(run: Run, saved: dict) -> list:
    """Where the saved config computes something else than ``run`` would
    (model, data, schedule, seed; the cache's mode and folder aside)."""
    from mmengine.config import Config

    from ..runs import config_differences as differences
    current = Config(run_config(run).to_dict()).to_dict()
    return [d for d in differences(saved, current)
            if not d[0].startswith(CACHE_KEYS)]


def final_metrics(work_dir: str, max_epochs: int) -> Optional[dict]:
    """The validation metrics logged after epoch ``max_epochs`` (the newest
    such record of all the runs in ``work_dir``), or None."""
    if not osp.isdir(work_dir):
        return None
    for stamp in sorted(os.listdir(work_dir), reverse=True):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        for record in reversed(records):
            if TOP1 in record and record.get('step') == max_epochs:
                return record
    return None


def run_state(run: Run):
    """``(state, detail)``: 'new' (nothing there), 'finished' (detail: the
    final metrics), 'unfinished' (the same config stopped part-way) or
    'other' (detail: why the work dir is not this run's)."""
    if not osp.isdir(run.work_dir) or not os.listdir(run.work_dir):
        return 'new', None
    saved = saved_run_config(run)
    if saved is None:
        if has_checkpoints(run):
            return 'other', ('it holds checkpoints but no '
                             f'{osp.basename(run.config)} of mmengine')
        return 'new', None
    differences = config_differences(run, saved)
    if differences:
        key, old, new = differences[0]
        return 'other', (f'its run has another config ({len(differences)} '
                         f'differences, e.g. {key}: {old!r} there, {new!r} '
                         'here)')
    max_epochs = (saved.get('train_cfg') or {}).get('max_epochs')
    metrics = final_metrics(run.work_dir, max_epochs)
    if metrics is not None:
        return 'finished', metrics
    return 'unfinished', None


def check_work_dirs(runs: Sequence[Run]) -> Dict[str, tuple]:
    """Each run's state; refuses, before anything is trained, when a work
    dir holds something that is not that run."""
    states = {run.work_dir: run_state(run) for run in runs}
    other = [(run, states[run.work_dir][1]) for run in runs
             if states[run.work_dir][0] == 'other']
    if other:
        listed = '\n'.join(f'  {run.work_dir}: {why}' for run, why in other)
        raise ComparisonError(
            f'{len(other)} work dir(s) hold runs that are not this '
            f'comparison\'s, and are left as they are:\n{listed}\n'
            'Choose another --work-dir, or move those runs away.')
    return states


def result_of(run: Run, metrics: Optional[dict], status: str,
              wall_s: Optional[float] = None) -> dict:
    result = dict(recipe=run.recipe, config=run.config, seed=run.seed,
                  work_dir=run.work_dir, status=status,
                  teacher=('record' if run.records else 'replay'
                           if run.cache_dir else None),
                  teacher_sha256=(run.identity or {}).get('teacher_sha256'),
                  train_data_sha256=((run.identity or {}).get('train_data')
                                     or {}).get('sha256'),
                  live_teacher=run.live_teacher,
                  top1=None, teacher_top1=None, wall_s=wall_s)
    if metrics is not None:
        result['top1'] = float(metrics[TOP1])
        if TEACHER_TOP1 in metrics:
            result['teacher_top1'] = float(metrics[TEACHER_TOP1])
    return result


def collect(runs: Sequence[Run]) -> List[dict]:
    """Results of the runs that finished ('done'); the others 'missing'."""
    results = []
    for run in runs:
        state, detail = run_state(run)
        results.append(result_of(run, detail if state == 'finished' else None,
                                 'done' if state == 'finished' else
                                 'missing'))
    return results


# ------------------------------------------------------------- training
def train_arguments(run: Run, resume: bool) -> List[str]:
    """``tools/train.py`` arguments after the config (any launcher)."""
    args = ['--work-dir', run.work_dir]
    if resume:
        args.append('--resume')
    if run.cache_dir:
        args += ['--teacher-cache', run.cache_dir]
    return args + ['--cfg-options', *run.cfg_options]


def cluster_command(run: Run, resume: bool, launcher: str, gpus: int,
                    partition: Optional[str] = None,
                    tools_dir: str = 'tools') -> str:
    """The shell command that trains ``run`` with ``tools/dist_train.sh``
    (``launcher='dist'``) or ``tools/slurm_train.sh`` (``'slurm'``)."""
    import shlex
    args = train_arguments(run, resume)
    if launcher == 'dist':
        words = [f'{tools_dir}/dist_train.sh', run.config, str(gpus), *args]
        return ' '.join(shlex.quote(w) for w in words)
    if launcher == 'slurm':
        job = f'{run.recipe.replace("/", "_")}_s{run.seed}'
        # slurm_train.sh takes the work dir as its fourth argument.
        rest = args[2:]
        words = [f'{tools_dir}/slurm_train.sh', partition or 'PARTITION',
                 job, run.config, run.work_dir, *rest]
        return f'GPUS={gpus} ' + ' '.join(shlex.quote(w) for w in words)
    raise ValueError(f"launcher must be 'dist' or 'slurm', got {launcher!r}.")


def waits_for(run: Run, runs: Sequence[Run]) -> Optional[Run]:
    """The run that records ``run``'s teacher cache, if another one does."""
    if not run.cache_dir or run.records:
        return None
    return next((r for r in runs
                 if r.records and r.cache_dir == run.cache_dir), None)


def train_all(runs: Sequence[Run], train_script: str, log_dir: str,
              jobs: int = 1, cwd: Optional[str] = None,
              say=None) -> List[dict]:
    """Train (or reuse) every run with ``python train_script``, ``jobs`` at
    a time, each with ``cpu_count // jobs`` threads, its output in
    ``log_dir``; a replaying run starts once its cache's recording run
    finished. Returns one result per run, in the order of ``runs``; a failed
    run is 'failed' (its log is named). Progress goes to ``say`` (default:
    mmengine's logger)."""
    if say is None:
        def say(message):
            print_log(message, logger='current')
    states = check_work_dirs(runs)
    results: Dict[str, dict] = {}
    todo = []
    for run in runs:
        state, detail = states[run.work_dir]
        if state == 'finished':
            results[run.work_dir] = result_of(run, detail, 'reused')
            say(f'{run.recipe} seed {run.seed}: finished before, top-1 '
                f'{results[run.work_dir]["top1"]:.2f} (reused)')
        else:
            todo.append((run, state == 'unfinished'))
    # Recording runs first: the runs that replay their caches wait for them.
    todo.sort(key=lambda item: not item[0].records)
    os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = str(max(1, (os.cpu_count() or 1) // jobs))
    env.setdefault('PYTHONWARNINGS', 'ignore::UserWarning')
    running = {}  # work_dir -> (run, process, log file, start)
    total, done = len(runs), len(results)
    while todo or running:
        for work_dir, (run, proc, log, start) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[work_dir]
            wall = time.time() - start
            # Trained with this very config: only its result is read.
            metrics = final_metrics(run.work_dir, run_config(
                run, with_cache=False).train_cfg.max_epochs)
            done += 1
            if proc.returncode == 0 and metrics is not None:
                results[work_dir] = result_of(run, metrics, 'done', wall)
                say(f'[{done}/{total}] {run.recipe} seed {run.seed}: top-1 '
                    f'{results[work_dir]["top1"]:.2f} '
                    f'({_minutes(wall)}{_teacher_note(run)})')
            else:
                results[work_dir] = dict(
                    result_of(run, None, 'failed', wall),
                    error=f'exit {proc.returncode}; log: {log.name}')
                say(f'[{done}/{total}] {run.recipe} seed {run.seed}: FAILED '
                    f'(exit {proc.returncode}); see {log.name}')
        for item in list(todo):
            if len(running) >= jobs:
                break
            run, resume = item
            recorder = waits_for(run, runs)
            if recorder is not None and recorder.work_dir not in results:
                continue  # its teacher cache is still being recorded
            todo.remove(item)
            if recorder is not None and \
                    results[recorder.work_dir]['status'] == 'failed':
                results[run.work_dir] = dict(
                    result_of(run, None, 'failed'),
                    error=f'its teacher cache was not recorded: '
                    f'{recorder.recipe} seed {recorder.seed} failed')
                done += 1
                continue
            log_path = osp.join(log_dir, f'{run.recipe.replace("/", "_")}'
                                f'_seed_{run.seed}.log')
            log = open(log_path, 'a')
            cmd = [sys.executable, train_script, run.config,
                   *train_arguments(run, resume)]
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            running[run.work_dir] = (run, proc, log, time.time())
            say(f'    {run.recipe} seed {run.seed}: training'
                f'{_teacher_note(run, done=False)}; log {log_path}')
        if running:
            time.sleep(0.5)
    return [results[run.work_dir] for run in runs]


def _minutes(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60}:{seconds % 60:02d}'


def _teacher_note(run: Run, done: bool = True) -> str:
    if not run.cache_dir:
        return ''
    if run.records:
        return ', teacher recorded' if done else ', records the teacher'
    return ', teacher replayed' if done else ', replays the teacher'


# --------------------------------------------------------------- report
def summarize(results: Sequence[dict], reference: Optional[str] = None,
              confidence: float = 0.95) -> dict:
    """Per recipe (in the order of ``results``): top-1 per seed, mean +-
    std, and the paired difference to ``reference`` (default: the first
    recipe) over the seeds both finished."""
    recipes = list(dict.fromkeys(r['recipe'] for r in results))
    reference = reference or recipes[0]
    if reference not in recipes:
        raise ComparisonError(f'reference {reference!r} is not one of the '
                              f'recipes {recipes}.')
    top1 = {name: {r['seed']: r['top1'] for r in results
                   if r['recipe'] == name and r['top1'] is not None}
            for name in recipes}
    rows = []
    for name in recipes:
        config = next(r['config'] for r in results if r['recipe'] == name)
        row = dict(recipe=name, config=config,
                   top1={str(s): v for s, v in sorted(top1[name].items())})
        if top1[name]:
            row.update(summarize_values(top1[name].values()))
        else:
            row.update(n=0, mean=math.nan, std=math.nan, min=math.nan,
                       max=math.nan)
        if name != reference:
            row['vs_reference'] = paired_difference(
                top1[name], top1[reference], confidence)
        rows.append(row)
    seeds = sorted({r['seed'] for r in results})
    learned_from = {key: sorted({r[key] for r in results if r.get(key)})
                    for key in ('teacher_sha256', 'train_data_sha256')}
    return dict(reference=reference, seeds=seeds, confidence=confidence,
                recipes=rows, learned_from=learned_from,
                live_teacher={r['recipe']: r['live_teacher'] for r in results
                              if r.get('live_teacher')},
                missing=[dict(recipe=r['recipe'], seed=r['seed'],
                              status=r['status'], error=r.get('error'))
                         for r in results if r['top1'] is None])


def _num(x, fmt='.2f') -> str:
    return '-' if x is None or (isinstance(x, float) and math.isnan(x)) \
        else format(x, fmt)


def format_paired(d: dict) -> str:
    """``+1.23 [-0.50, +2.96], ahead on 4 of 5`` (mean, t-interval)."""
    if d['n'] == 0:
        return 'no common seed'
    interval = ('' if math.isnan(d['low']) else
                f" [{d['low']:+.2f}, {d['high']:+.2f}]")
    return (f"{d['mean']:+.2f}{interval}, ahead on {d['ahead']} of "
            f"{d['n']}")


def format_table(summary: dict) -> str:
    """The markdown table: one row per recipe."""
    ref = summary['reference']
    pct = round(100 * summary['confidence'])
    lines = [f'| recipe | n | top-1 mean +- std | min - max | vs {ref} '
             f'(paired: mean [{pct}% CI], seeds ahead) |',
             '|---|---:|---|---|---|']
    for row in summary['recipes']:
        paired = ('reference' if row['recipe'] == ref else
                  format_paired(row['vs_reference']))
        lines.append(f"| {row['recipe']} | {row['n']} | "
                     f"{_num(row['mean'])} +- {_num(row['std'])} | "
                     f"{_num(row['min'], '.1f')} - {_num(row['max'], '.1f')} "
                     f'| {paired} |')
    return '\n'.join(lines)


def format_seed_table(summary: dict) -> str:
    """The markdown table of every run's top-1: recipes by seeds."""
    seeds = summary['seeds']
    lines = ['| recipe | ' + ' | '.join(f'seed {s}' for s in seeds) + ' |',
             '|---|' + '---:|' * len(seeds)]
    for row in summary['recipes']:
        cells = [_num(row['top1'].get(str(s))) for s in seeds]
        lines.append(f"| {row['recipe']} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_markdown(summary: dict, meta: dict) -> str:
    pct = round(100 * summary['confidence'])
    text = [f"# Comparison of {len(summary['recipes'])} recipes over "
            f"{len(summary['seeds'])} seeds", '',
            format_table(summary), '',
            f"Top-1 (%) after the last epoch. Paired: each recipe's top-1 "
            f"minus {summary['reference']}'s on the same seed, mean and "
            f'{pct}% t-interval over the seeds both finished.', '',
            '## Every run', '', format_seed_table(summary), '']
    for item in summary['missing']:
        why = item['status'] + (f"; {item['error']}" if item.get('error')
                                else '')
        text.append(f"- missing: {item['recipe']} seed {item['seed']} "
                    f'({why})')
    for recipe, why in summary.get('live_teacher', {}).items():
        text.append(f'- {recipe} trained with its teacher live (not '
                    f'replayed): {why.splitlines()[0]}')
    text += ['', '## How it was measured', '']
    for key, values in summary.get('learned_from', {}).items():
        if values:
            text.append(f"- {key.replace('_', ' ')}: {', '.join(values)}")
    text += [f'- {key}: {value}' for key, value in meta.items()
             if not isinstance(value, dict)]
    for key, value in meta.items():
        if isinstance(value, dict):
            text.append(f'- {key}: ' + ', '.join(
                f'{k} {v}' for k, v in value.items()))
    return '\n'.join(text) + '\n'


def plot_comparison(summary: dict, path) -> str:
    """Each seed's top-1 per recipe (points, a seed's points joined), with
    the mean, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = summary['recipes']
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows) + 2), 4), dpi=120)
    for seed in summary['seeds']:
        ys = [row['top1'].get(str(seed)) for row in rows]
        xs = [i for i, y in enumerate(ys) if y is not None]
        ax.plot(xs, [ys[i] for i in xs], color='0.75', linewidth=0.8,
                marker='o', markersize=4, zorder=1)
    means = [row['mean'] for row in rows]
    ax.scatter(range(len(rows)), means, marker='_', s=600, color='tab:red',
               zorder=2, label='mean')
    ax.set_xticks(range(len(rows)), [row['recipe'] for row in rows],
                  rotation=20, ha='right', fontsize=8)
    ax.set_ylabel('top-1 (%)')
    ax.set_title(f"{len(summary['seeds'])} seeds; grey lines join one seed",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
    return str(path)


def cpu_name() -> str:
    """The CPU's name with its family and model: machines sold under one
    name ("AMD EPYC") differ in the kernels they run, and so in the last
    bits of every result."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                if not key.strip():
                    break  # the first processor is enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get('model name') or platform.processor() or \
        platform.machine()
    if 'cpu family' in fields and 'model' in fields:
        name += f", family {fields['cpu family']} model {fields['model']}"
    return name


def machine() -> str:
    """The machine a measurement ran on, in words, with the widest vector
    instructions torch's CPU kernels use there (results of one commit and
    seed are bitwise equal on one machine, not across these)."""
    import torch
    text = (f'{os.cpu_count()} CPU cores ({cpu_name()}; torch kernels '
            f'{torch.backends.cpu.get_cpu_capability()})')
    if torch.cuda.is_available():
        text += ', ' + ', '.join(torch.cuda.get_device_name(i)
                                 for i in range(torch.cuda.device_count()))
    return text


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = dict(python=platform.python_version())
    for name in ('torch', 'mmengine', 'mmpretrain', 'mmrazor',
                 'figkd_mmrazor'):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = 'not installed'
    return out


def report_meta(command: str, wall_s: Optional[float] = None, **extra
                ) -> dict:
    """Command, date, machine and versions of a report."""
    meta = dict(command=command,
                date=datetime.datetime.now().astimezone().isoformat(
                    timespec='seconds'),
                machine=machine(), **extra)
    if wall_s is not None:
        meta['wall_s'] = round(wall_s, 1)
    meta['versions'] = versions()
    return meta


def _without_nan(value):
    """NaN (an undefined std or interval) as JSON's null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(v) for v in value]
    return value


def write_report(summary: dict, meta: dict, out_dir, name: str = 'comparison'
                 ) -> Dict[str, str]:
    """``out_dir/<name>.{md,json,png}``; returns the paths. An earlier
    report there is moved into ``out_dir/previous_reports/<time>/``, never
    overwritten."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ext: osp.join(str(out_dir), f'{name}.{ext}')
             for ext in ('md', 'json', 'png')}
    earlier = [path for path in paths.values() if osp.exists(path)]
    if earlier:
        from ..runs import set_aside_files
        folder = set_aside_files(earlier, osp.join(str(out_dir),
                                                   'previous_reports'))
        print_log(f'The earlier report is now in {folder}.',
                  logger='current')
    with open(paths['md'], 'w') as f:
        f.write(format_markdown(summary, meta))
    with open(paths['json'], 'w') as f:
        json.dump(_without_nan(dict(meta=meta, **summary)), f, indent=1)
        f.write('\n')
    plot_comparison(summary, paths['png'])
    return paths
