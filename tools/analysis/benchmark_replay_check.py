"""What checking a teacher cache costs a replaying run, against one epoch.

    make demo    # records the demo's teacher cache (work_dirs/demo/)
    python tools/analysis/benchmark_replay_check.py \\
        [--config work_dirs/demo/kd/seed_1/kd.py] [--json OUT]

``--config`` is the config a replaying run trained with (mmengine saves it
in the run's work dir; the default is one of ``make demo``'s KD runs). In one
process this times:

* ``fingerprint``: the run's fingerprint before the Runner exists (teacher
  checkpoint and every training image hashed), first with no file digests
  kept (a machine's first run) and then with them (every later run);
* ``verify``: the check before the first replayed step, over every epoch the
  config trains (each shard's size, sha256, epoch and rank);
* ``epoch``: one replayed training epoch of the config through mmengine's
  Runner (validation off), from ``before_train_epoch`` to
  ``after_train_epoch``; its own reads of the shards include the per-read
  checksums.

and prints each with its ratio to the epoch. The shards are in the page
cache (the demo has just written or read them), as on the machine that
records and replays them; a cold network disk reads slower for both.
"""
import argparse
import json
import os
import os.path as osp
import tempfile
import time

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor.analysis.comparison import report_meta
from figkd_mmrazor.replay import apply_to_config, settings_of, store
from figkd_mmrazor.replay import fingerprint as digests
from mmengine.config import Config
from mmengine.hooks import Hook


class EpochTimer(Hook):
    priority = 'HIGHEST'

    def before_train_epoch(self, runner) -> None:
        self.start = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        self.seconds = time.perf_counter() - self.start


def time_fingerprint(cfg, settings) -> dict:
    # The digests go to a folder of this process: the user's are kept.
    os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='figkd_bench_')
    digests.forget_digests()
    start = time.perf_counter()
    digests.fingerprint(cfg, settings)
    cold = time.perf_counter() - start
    digests.forget_digests()  # read back from disk, as a new run does
    start = time.perf_counter()
    digests.fingerprint(cfg, settings)
    return dict(first_run_s=cold, later_runs_s=time.perf_counter() - start)


def time_verify(cache_dir: str, epochs: int, repeats: int = 3) -> float:
    manifest = store.read_manifest(cache_dir)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.verify(cache_dir, manifest, range(epochs))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def time_epoch(config: str, work_dir: str) -> float:
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg.pop('val_interval', None)
    cfg.default_hooks.checkpoint = None
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks') or []
                        if h.get('type') != 'StudentCheckpointHook']
    cfg.resume, cfg.load_from = False, None
    apply_to_config(cfg)
    if cfg.model.teacher_cache.get('mode') != 'replay':
        raise SystemExit(f'{config}: its teacher cache would record, not '
                         'replay; run make demo first (or give the config '
                         'of a replaying run).')
    runner = Runner.from_cfg(cfg)
    timer = EpochTimer()
    runner.register_hook(timer)
    runner.train()
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config',
                        default='work_dirs/demo/kd/seed_1/kd.py')
    parser.add_argument('--json', help='write the result here too')
    args = parser.parse_args()
    cfg = Config.fromfile(args.config)
    settings = settings_of(cfg)
    if settings is None:
        raise SystemExit(f'{args.config} has no teacher_cache.dir.')
    epochs = int(cfg.train_cfg.max_epochs)
    fp = time_fingerprint(cfg, settings)
    verify = time_verify(settings['dir'], epochs)
    with tempfile.TemporaryDirectory() as work_dir:
        epoch = time_epoch(args.config, work_dir)
    manifest = store.read_manifest(settings['dir'])
    shards = sum(osp.getsize(osp.join(settings['dir'], rel))
                 for e in range(epochs)
                 for rel in manifest['epochs'][str(e)]['files'])
    rows = [('fingerprint, first run on this machine', fp['first_run_s']),
            ('fingerprint, later runs (digests kept)', fp['later_runs_s']),
            (f'verify {epochs} epochs ({shards / 1e6:.1f} MB of shards)',
             verify),
            ('start-up check of a later run (fingerprint + verify)',
             fp['later_runs_s'] + verify),
            ('one replayed epoch', epoch)]
    print(f'| step ({args.config}) | seconds | / one replayed epoch |')
    print('|---|---:|---:|')
    for name, seconds in rows:
        print(f'| {name} | {seconds:.3f} | {seconds / epoch:.4f} |')
    if args.json:
        meta = report_meta('python tools/analysis/benchmark_replay_check.py '
                           f'--config {args.config}')
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, samples=manifest['dataset_length'],
                           rows=[dict(step=n, seconds=s, ratio=s / epoch)
                                 for n, s in rows]), f, indent=1)


if __name__ == '__main__':
    main()
