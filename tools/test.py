"""Evaluate a checkpoint of a config, as mmpretrain's ``tools/test.py``.

Before the Runner is built, the test data and the checkpoint are checked:
the checkpoint must fit the config's model key by key and shape by shape
(mmengine would load a student checkpoint into a distillation model, or the
reverse, with a warning, and test a random model).
"""
import argparse
import os

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor import class_axis, compat, runs
from figkd_mmrazor.preflight import check_before_testing, default_work_dir
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump metrics to this file (.json, '
                        '.yaml or .pkl)')
    parser.add_argument('--amp', action='store_true',
                        help='test with automatic mixed precision')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg.fp16 = True
    class_axis.apply_to_config(cfg)
    check_before_testing(cfg)
    compat.init_cpu_distributed(cfg, args.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(
        cfg)
    try:
        metrics = runner.test()
        if args.out and runner.rank == 0:
            from mmengine.fileio import dump
            dump(dict(metrics), args.out)
    finally:
        runs.end_distributed()


if __name__ == '__main__':
    main()
    runs.exit_finished_distributed_run()
