"""The embedded demo: a complete small FiGKD study on a laptop CPU.

One command runs, on the synthetic fine-grained demo dataset
(:mod:`figkd_mmrazor.demo`, CUB-200-2011 layout, loaded by mmpretrain's
``CUB``), the whole comparison the real recipes make on CUB-200-2011::

    python tools/demo_study.py          # or: make demo

1. generate the dataset into ``data/demo_cub`` (skipped when it is there),
2. train the teacher from scratch (``configs/demo/teacher.py``),
3. train the same student four ways, with one schedule and one seed:
   cross-entropy alone (``configs/demo/student.py``), MMRazor KD
   (``kd.py``), MMRazor DKD (``dkd.py``) and FiGKD (``figkd.py``), the
   losses taken unchanged from ``configs/_base_/distill/``,
4. print the test-split top-1 of the teacher and of each student, and write
   it to ``work_dirs/demo/results.{md,json,png}``.

Every stage is a ``tools/train.py`` run in its own process (the mmengine
Runner, MMRazor's ``SingleTeacherDistill`` and ``ConfigurableDistiller``, the
plugin's ``FiGKDLoss`` and ``LogitsRecorder``), so its full log lands in its
own work dir (``work_dirs/demo/<stage>/``); the accuracy is read back from
the run's ``vis_data/scalars.json``.

``--epochs`` / ``--teacher-epochs`` shorten or lengthen the schedules (quick
checks); ``--data-root`` takes any dataset written by
``python -m figkd_mmrazor.demo`` (other sizes, class counts,
difficulty): the class list and head sizes follow it. ``--skip-existing``
reuses the stages already finished with the same settings, so an interrupted
study resumes where it stopped.
"""
import argparse
import collections
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figkd_mmrazor.demo import DemoSpec, make_demo_cub  # noqa: E402

DEFAULT_WORK_DIR = 'work_dirs/demo'
DEFAULT_DATA_ROOT = 'data/demo_cub'
DATASET_BASE = 'configs/_base_/datasets/demo_cub.py'
RESULT_NAME = 'results'
STAGE_FILE = 'demo_stage.json'  # what a finished stage ran, and its result

# name, config, label in the table, loss description, is a distillation
STAGES = [
    ('teacher', 'configs/demo/teacher.py', 'Teacher',
     'cross-entropy (wide ResNet_CIFAR-18)', False),
    ('student', 'configs/demo/student.py', 'Student alone',
     'cross-entropy', False),
    ('kd', 'configs/demo/kd.py', 'KD', 'CE + MMRazor KLDivergence', True),
    ('dkd', 'configs/demo/dkd.py', 'DKD', 'CE + MMRazor DKDLoss', True),
    ('figkd', 'configs/demo/figkd.py', 'FiGKD', 'CE + FiGKDLoss (ours)',
     True),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run the embedded FiGKD demo study (teacher, student '
        'alone, KD, DKD, FiGKD) on the synthetic fine-grained dataset.')
    parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                        help='where the runs and the results go '
                        '(default: %(default)s)')
    parser.add_argument('--data-root', default=DEFAULT_DATA_ROOT,
                        help='demo dataset; generated with the default spec '
                        'when absent, used as it is when present '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of every run (default: %(default)s)')
    parser.add_argument('--epochs', type=int,
                        help="the students' epochs (default: the configs')")
    parser.add_argument('--teacher-epochs', type=int,
                        help="the teacher's epochs (default: the config's)")
    parser.add_argument('--skip-existing', action='store_true',
                        help='reuse stages already finished in the work dir '
                        'with the same settings')
    parser.add_argument('--verbose', action='store_true',
                        help="show the runs' whole output (environment, "
                        'config and hook dumps too); by default only their '
                        'one-line log messages, all of it on failure')
    args = parser.parse_args(argv)
    for name in ('epochs', 'teacher_epochs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


# ----------------------------------------------------------------- helpers
def say(text=''):
    print(text, flush=True)


def fmt_time(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 60}:{seconds % 60:02d}'


def epoch_options(epochs):
    """cfg-options giving the demo schedule (schedules/demo.py) ``epochs``:
    one warm-up epoch, cosine over the rest, validation at the end."""
    return [f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.1.T_max={max(1, epochs - 1)}',
            f'param_scheduler.1.end={max(2, epochs)}']


def dataset_options(data_root, classes, default_classes, distill):
    """cfg-options pointing a demo config at another dataset."""
    opts = []
    if data_root != DEFAULT_DATA_ROOT:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            opts.append(f'{loader}.dataset.data_root={data_root}')
    if list(classes) != list(default_classes):
        names = '[' + ','.join(classes) + ']'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            opts.append(f'{loader}.dataset.classes={names}')
        n = len(classes)
        opts.append(f'data_preprocessor.num_classes={n}')
        if distill:
            opts += [f'model.architecture.head.num_classes={n}',
                     f'model.teacher.head.num_classes={n}']
        else:
            opts.append(f'model.head.num_classes={n}')
    return opts


def config_classes():
    """The class list the demo configs carry (the default dataset's)."""
    from mmengine.config import Config
    return list(Config.fromfile(str(ROOT / DATASET_BASE)).classes)


def read_metrics(work_dir):
    """The last validation metrics of the newest run in ``work_dir``."""
    runs = sorted(p for p in Path(work_dir).glob('*/vis_data/scalars.json'))
    for scalars in reversed(runs):
        metrics = None
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if 'accuracy/top1' in record:
                metrics = record
        if metrics is not None:
            return metrics
    raise RuntimeError(f'no validation accuracy found under {work_dir}/*/'
                       'vis_data/scalars.json')


def last_checkpoint(work_dir):
    """The checkpoint mmengine saved last in ``work_dir``."""
    marker = Path(work_dir) / 'last_checkpoint'
    if not marker.is_file():
        raise RuntimeError(f'{work_dir} has no last_checkpoint: the run did '
                           'not save one')
    path = Path(marker.read_text().strip())
    if not path.is_absolute():
        path = ROOT / path
    return path


def display(path):
    """``path`` relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def shorten(arg, limit=100):
    arg = str(arg)
    return arg if len(arg) <= limit else arg[:limit - 5] + '...]'


# mmengine's log lines; a message spanning lines continues without a stamp.
LOG_LINE = re.compile(r'^\d\d/\d\d \d\d:\d\d:\d\d - \S+ - \w+ - (.*)$')
# One-line messages of every start that say nothing about this study.
QUIET = ('Config:', 'Hooks will be executed', 'Distributed training is not',
         '"FileClient" will be deprecated', '"HardDiskBackend" is the alias')


def stream(cmd, verbose):
    """Run ``cmd``, echoing its log messages; return its exit status.

    Multi-line messages (mmengine's environment, config and hook dumps) are
    left out unless ``verbose``: they stay in each run's log file. On
    failure the last lines of the whole output follow, traceback included.
    """
    tail = collections.deque(maxlen=60)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors='replace')
    try:
        for line in proc.stdout:
            tail.append(line)
            match = LOG_LINE.match(line)
            if verbose or (match and match.group(1).strip()
                           and not match.group(1).startswith(QUIET)):
                sys.stdout.write(line)
                sys.stdout.flush()
    finally:
        returncode = proc.wait()
    if returncode != 0 and not verbose:
        say('    ... the last lines of its output:')
        sys.stdout.write(''.join(tail))
    return returncode


def child_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(ROOT)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    # mmcv-lite and pkg_resources warn on every start; keep the logs readable.
    env.setdefault('PYTHONWARNINGS', 'ignore::UserWarning')
    env['PYTHONUNBUFFERED'] = '1'  # log lines as they come
    return env


# ------------------------------------------------------------------ stages
def run_stage(index, total, name, config, label, work_dir, options, settings,
              skip_existing, verbose=False):
    """Train one config with tools/train.py; return its result dict."""
    stage_dir = Path(work_dir) / name
    record_path = stage_dir / STAGE_FILE
    say(f'\n[{index}/{total}] {label}: {config} -> {display(stage_dir)}')
    if skip_existing and record_path.is_file():
        record = json.loads(record_path.read_text())
        if (record.get('settings') == settings
                and Path(record.get('checkpoint', '')).is_file()):
            say(f'    finished before with the same settings: top-1 '
                f'{record["top1"]:.2f}% (--skip-existing)')
            return record
        say('    a run is there, but with other settings: training again')
    record_path.unlink(missing_ok=True)

    cmd = [sys.executable, 'tools/train.py', config, '--work-dir',
           str(stage_dir), '--cfg-options', *options]
    say('    $ python ' + ' '.join(shlex.quote(shorten(c)) for c in cmd[1:]))
    start = time.time()
    returncode = stream(cmd, verbose)
    wall = time.time() - start
    if returncode != 0:
        raise SystemExit(f'[{index}/{total}] {label} failed (exit '
                         f'{returncode}); its log is under '
                         f'{display(stage_dir)}/')
    metrics = read_metrics(stage_dir)
    record = dict(
        stage=name, config=config, settings=settings,
        top1=float(metrics['accuracy/top1']),
        checkpoint=str(last_checkpoint(stage_dir)), wall_s=round(wall, 1))
    if 'teacher.accuracy/top1' in metrics:
        record['teacher_top1'] = float(metrics['teacher.accuracy/top1'])
    record_path.write_text(json.dumps(record, indent=2) + '\n')
    say(f'    [{index}/{total}] {label}: top-1 {record["top1"]:.2f}% on the '
        f'test split ({fmt_time(wall)})')
    return record


# ----------------------------------------------------------------- results
def make_rows(records):
    rows = []
    student = records['student']['top1']
    for name, config, label, loss, _ in STAGES:
        rec = records[name]
        row = dict(method=label, stage=name, config=config, loss=loss,
                   top1=round(rec['top1'], 2), wall_s=rec.get('wall_s'))
        if name != 'teacher':
            row['delta_vs_student'] = round(rec['top1'] - student, 2)
        rows.append(row)
    return rows


def markdown_table(rows):
    lines = ['| Method | Loss | Top-1 (%) | vs. student alone | Train time |',
             '|---|---|---:|---:|---:|']
    for row in rows:
        delta = row.get('delta_vs_student')
        delta = '' if delta is None or row['stage'] == 'student' \
            else f'{delta:+.2f}'
        wall = '' if row['wall_s'] is None else fmt_time(row['wall_s'])
        lines.append(f'| {row["method"]} | {row["loss"]} | '
                     f'{row["top1"]:.2f} | {delta} | {wall} |')
    return '\n'.join(lines)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = [r['method'] for r in rows]
    values = [r['top1'] for r in rows]
    colours = ['#7f7f7f', '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728']
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    bars = ax.bar(labels, values, color=colours[:len(rows)])
    student = next(r['top1'] for r in rows if r['stage'] == 'student')
    ax.axhline(student, color='#1f77b4', linestyle='--', linewidth=1,
               label='student alone')
    for bar, value in zip(bars, values):
        ax.annotate(f'{value:.1f}', (bar.get_x() + bar.get_width() / 2,
                                     value), ha='center', va='bottom',
                    xytext=(0, 2), textcoords='offset points')
    ax.set_ylabel('top-1 on the test split (%)')
    ax.set_ylim(0, min(100, max(values) * 1.18 + 1))
    ax.set_title(title, fontsize=10)
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(work_dir, rows, meta):
    work_dir = Path(work_dir)
    table = markdown_table(rows)
    spec = meta['dataset']
    title = (f'Demo study: {spec["num_classes"]} classes, '
             f'{spec["size"]} px, seed {meta["seed"]}')
    md = (f'# {title}\n\n{table}\n\n'
          'Top-1 on the test split after the last epoch, one run per method '
          '(the same seed for all): differences of a few points can be '
          'seed noise; `--seed` gives other draws.\n\n'
          f'`{meta["command"]}`: {meta["date"]}, {meta["machine"]}, total '
          f'wall {fmt_time(meta["wall_s"])}.\n')
    paths = {ext: work_dir / f'{RESULT_NAME}.{ext}'
             for ext in ('md', 'json', 'png')}
    paths['md'].write_text(md)
    paths['json'].write_text(
        json.dumps(dict(meta, rows=rows), indent=2) + '\n')
    plot(rows, paths['png'], title)
    return table, paths


def cpu_name():
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    import torch
    cpu = cpu_name()
    return (f'{os.cpu_count()} CPU cores ({cpu}), torch '
            f'{torch.__version__} with {torch.get_num_threads()} threads')


# -------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    total = len(STAGES) + 1
    work_dir = Path(args.work_dir)
    if not work_dir.is_absolute():
        work_dir = ROOT / work_dir
    data_root = Path(args.data_root)
    if not data_root.is_absolute():
        data_root = ROOT / data_root

    say(f'[1/{total}] Demo dataset: {display(data_root)}')
    if (data_root / 'demo_spec.json').is_file():
        spec = DemoSpec.from_dir(data_root)
    else:
        spec = DemoSpec()
    make_demo_cub(data_root, spec, progress=sys.stderr.isatty())
    say(f'    {spec.num_classes} classes ({spec.families} families x '
        f'{spec.species_per_family} species), {spec.train_per_class} train '
        f'+ {spec.test_per_class} test images per class, {spec.size} px '
        f'({fmt_time(time.time() - start)})')

    classes = spec.class_names()
    default_classes = config_classes()
    work_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    teacher_ckpt = None
    for i, (name, config, label, _, distill) in enumerate(STAGES, 2):
        epochs = args.teacher_epochs if name == 'teacher' else args.epochs
        options = [f'randomness.seed={args.seed}']
        options += dataset_options(display(data_root), classes,
                                   default_classes, distill)
        if epochs is not None:
            options += epoch_options(epochs)
        if distill:
            options.append(f'model.teacher_ckpt={teacher_ckpt}')
        settings = dict(config=config, options=options,
                        spec=json.loads(spec.to_json()))
        if distill:  # a retrained teacher invalidates the distillations
            settings['teacher'] = records['teacher']['settings']
        records[name] = run_stage(i, total, name, config, label, work_dir,
                                  options, settings, args.skip_existing,
                                  args.verbose)
        if name == 'teacher':
            teacher_ckpt = display(records[name]['checkpoint'])
        elif distill:
            # The distillation's own validation of the frozen teacher must
            # give the teacher run's accuracy: else it distils another model.
            seen = records[name].get('teacher_top1')
            if seen is not None and abs(seen - records['teacher']['top1']) \
                    > 0.01:
                say(f'    WARNING: the teacher scores {seen:.2f}% in this '
                    f'run, {records["teacher"]["top1"]:.2f}% in its own')

    wall = time.time() - start
    rows = make_rows(records)
    meta = dict(
        date=datetime.date.today().isoformat(), seed=args.seed,
        epochs=args.epochs, teacher_epochs=args.teacher_epochs,
        dataset=dict(json.loads(spec.to_json()), root=display(data_root),
                     num_classes=spec.num_classes),
        machine=machine(), wall_s=round(wall, 1),
        command=' '.join(['python', 'tools/demo_study.py'] +
                         [shlex.quote(a) for a in (argv or sys.argv[1:])]))
    table, paths = write_results(work_dir, rows, meta)
    say(f'\nDemo study finished in {fmt_time(wall)} (seed {args.seed}). '
        'Top-1 on the test split:\n')
    say(table)
    say('\nWritten: ' + ', '.join(display(p) for p in paths.values()))
    return rows


if __name__ == '__main__':
    main()
