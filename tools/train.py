"""Train a model (a distillation or a plain mmpretrain config) with mmengine.

The flags are those of mmpretrain's and MMRazor's ``tools/train.py``. Before
the Runner is built, the plugin checks what would otherwise fail late: the
dataset files, the teacher checkpoint, the work dir (not in use, no earlier
run overwritten) and, with ``--resume``, that the config matches the
checkpoint's. Checkpoints are written atomically and a non-finite loss stops
the run (``figkd_mmrazor.runs``). On a machine without GPUs,
``--launcher pytorch`` trains on CPU with the gloo backend.
"""
import argparse
import os

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor import class_axis, compat, replay, runs
from figkd_mmrazor.replay import keyed_views
from figkd_mmrazor.hooks import NonFiniteLossError
from figkd_mmrazor.preflight import check_before_training, default_work_dir
from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--start-over', action='store_true',
        help='train from scratch in a work dir that holds an earlier run: '
        'move that run into WORK_DIR/previous_runs/<time>/ (nothing is '
        'deleted)')
    parser.add_argument(
        '--resume-with-changes', action='store_true',
        help='resume even though the model, losses, data or schedule differ '
        'from the config saved in the checkpoint (the differences are '
        'printed; saved optimizer and scheduler states are restored)')
    parser.add_argument(
        '--teacher-cache', metavar='DIR',
        help='record the frozen teacher\'s logits into DIR, or replay them '
        'from DIR (skipping the teacher) when it holds a cache for this '
        'config; see figkd_mmrazor.replay')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by actual / base batch size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'model.teacher_ckpt=None train_cfg.max_epochs=1)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes either form.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.start_over and args.resume is not None:
        parser.error('--start-over trains from scratch; --resume continues. '
                     'Choose one.')
    if args.resume_with_changes and args.resume is None:
        parser.error('--resume-with-changes needs --resume')
    if args.amp and get_device() == 'cpu':
        # mmengine's AmpOptimWrapper asserts this only after building.
        parser.error('--amp needs a GPU (or NPU/MLU/MUSA); this machine has '
                     'none. Train without --amp.')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg, args):
    """Apply the command line to the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    check_before_training(cfg)
    cfg = class_axis.apply_to_config(cfg)
    cfg = keyed_views.apply_to_config(cfg)
    cfg = replay.apply_to_config(cfg, args.teacher_cache)
    # Held until the process ends, however it ends.
    lock = runs.prepare_work_dir(  # noqa: F841
        cfg, resume=args.resume, start_over=args.start_over,
        allow_changes=args.resume_with_changes)
    runs.add_run_guards(cfg)
    compat.init_cpu_distributed(cfg, args.launcher)
    try:
        if 'runner_type' in cfg:
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        try:
            runner.train()
        except NonFiniteLossError:
            raise  # NonFiniteLossHook has named the step
        except FloatingPointError as err:
            # A loss that checks its inputs (FiGKDLoss) raises inside the
            # step, before NonFiniteLossHook sees the losses: name the step.
            raise NonFiniteLossError(
                f'Non-finite values at Epoch(train) [{runner.epoch + 1}], '
                f'iteration {runner.iter + 1}; nothing of this step was '
                f'saved. {err}') from err
    finally:
        runs.end_distributed()


if __name__ == '__main__':
    main()
    runs.exit_finished_distributed_run()
