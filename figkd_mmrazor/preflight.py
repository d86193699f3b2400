"""Checks that run before the Runner is built, so bad input fails in seconds.

A missing dataset file or teacher checkpoint would otherwise surface after
models are built, or, worse, a teacher whose head does not fit its checkpoint
would only log a warning (mmengine loads checkpoints with ``strict=False``)
and distil from a randomly initialised classifier.
"""
import os

from .datasets import check_config, check_dataset_root


def _local(path) -> bool:
    return isinstance(path, str) and '://' not in path


def teacher_num_classes_in_checkpoint(path: str):
    """Rows of the teacher checkpoint's classifier weight, or None."""
    from mmengine.runner import CheckpointLoader
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    for key, value in state.items():
        # mmpretrain heads: head.fc.weight, head.layers.head.weight, ...
        if (key.startswith('head.') and key.endswith('.weight')
                and getattr(value, 'dim', lambda: 0)() == 2):
            return value.shape[0]
    return None


def check_teacher(cfg) -> None:
    """A configured local ``teacher_ckpt`` exists and fits the teacher."""
    model = cfg.get('model', {})
    path = model.get('teacher_ckpt')
    if not _local(path):
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'Teacher checkpoint {path} does not exist. Train or download the '
            'teacher first (configs/teachers/), or point to it with '
            '--cfg-options model.teacher_ckpt=PATH.')
    teacher = model.get('teacher', {})
    expected = teacher.get('head', {}).get('num_classes') if isinstance(
        teacher, dict) else None
    found = teacher_num_classes_in_checkpoint(path)
    if expected is not None and found is not None and found != expected:
        raise ValueError(
            f'Teacher checkpoint {path} has a classifier for {found} '
            f'classes, but the teacher config has num_classes={expected}. '
            'Use the checkpoint fine-tuned on this dataset, or fix '
            'model.teacher.head.num_classes.')


def default_work_dir(config: str) -> str:
    """``work_dirs/<algorithm folder>/<config name>``: figkd/, kd/ and dkd/
    share config names, so their runs must not share a folder."""
    name = os.path.splitext(os.path.basename(config))[0]
    folder = os.path.basename(os.path.dirname(os.path.abspath(config)))
    return os.path.join('work_dirs', folder, name)


def check_before_training(cfg) -> None:
    check_config(cfg)
    check_teacher(cfg)


def check_before_testing(cfg) -> None:
    loader = cfg.get('test_dataloader') or {}
    if loader.get('dataset'):
        check_dataset_root(loader['dataset'])
