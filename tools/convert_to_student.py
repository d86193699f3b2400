"""Turn a distillation checkpoint into a student-only mmpretrain checkpoint.

For checkpoints written before ``StudentCheckpointHook`` was configured (or
by another MMRazor setup): the result is what the hook writes as
``student_epoch_N.pth``, and with ``--config`` the student config it writes
as ``student.py``, so that::

    mmpretrain.get_model('student.py', pretrained='student.pth')

loads the distilled student. Usage::

    python tools/convert_to_student.py work_dirs/x/epoch_100.pth student.pth \\
        [--config configs/figkd/cub_r50_r18.py --config-out student.py]

An existing output is never overwritten unless ``--force`` is given.
"""
import argparse
import os
import os.path as osp
import sys

import figkd_mmrazor  # noqa: F401  (compatibility fixes and registration)
from figkd_mmrazor.checkpoints import load_checkpoint, student_checkpoint
from figkd_mmrazor.hooks.student_checkpoint_hook import student_config
from figkd_mmrazor.runs import atomic_save
from mmengine.config import Config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract the student of an MMRazor distillation '
        'checkpoint as an mmpretrain checkpoint.')
    parser.add_argument('checkpoint', help='distillation checkpoint '
                        '(keys "architecture.*"); a path or URL')
    parser.add_argument('out', help='student checkpoint to write')
    parser.add_argument(
        '--config', help='the distillation config of the checkpoint: also '
        'write the student config (as StudentCheckpointHook does)')
    parser.add_argument(
        '--config-out', help='where to write the student config (default: '
        'OUT with the extension .py); needs --config')
    parser.add_argument('--force', action='store_true',
                        help='overwrite existing outputs')
    args = parser.parse_args(argv)
    if args.config_out and not args.config:
        parser.error('--config-out needs --config (the distillation config)')
    if args.config and not args.config_out:
        args.config_out = osp.splitext(args.out)[0] + '.py'
    return args


def _check_outputs(args) -> None:
    outs = [args.out] + ([args.config_out] if args.config_out else [])
    if osp.exists(args.checkpoint) and any(
            osp.exists(o) and osp.samefile(o, args.checkpoint) for o in outs):
        raise SystemExit(f'error: refusing to overwrite the input '
                         f'checkpoint {args.checkpoint}')
    if len(set(map(osp.abspath, outs))) < len(outs):
        raise SystemExit('error: OUT and --config-out are the same file')
    existing = [o for o in outs if osp.exists(o)]
    if existing and not args.force:
        raise SystemExit(f'error: {", ".join(existing)} already exist(s); '
                         'pass --force to overwrite')


def main(argv=None) -> None:
    args = parse_args(argv)
    _check_outputs(args)
    # Read the config first: a bad --config fails before any writing.
    config = student_config(Config.fromfile(args.config)) \
        if args.config else None
    checkpoint = load_checkpoint(args.checkpoint, map_location='cpu')
    if 'state_dict' not in checkpoint:
        raise SystemExit(f'error: {args.checkpoint} has no "state_dict": '
                         'not an mmengine checkpoint')
    try:
        student = student_checkpoint(checkpoint)
    except ValueError as err:
        raise SystemExit(f'error: {args.checkpoint}: {err}') from None
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    atomic_save(student, args.out)
    print(f'Wrote {args.out}: {len(student["state_dict"])} student tensors')
    if config is not None:
        folder = osp.dirname(osp.abspath(args.config_out))
        os.makedirs(folder, exist_ok=True)
        config.dump(args.config_out)
        print(f'Wrote {args.config_out}')


if __name__ == '__main__':
    sys.exit(main())
