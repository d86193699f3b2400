"""Hand the distilled student to mmpretrain: its own checkpoint and config."""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmrazor.registry import HOOKS

STUDENT_PREFIX = 'architecture.'


def student_state_dict(state_dict: dict) -> dict:
    """The student's weights of a distillation state dict, unprefixed."""
    student = {k[len(STUDENT_PREFIX):]: v for k, v in state_dict.items()
               if k.startswith(STUDENT_PREFIX)}
    if not student:
        raise ValueError(
            'No student weights found: expected keys starting with '
            f'{STUDENT_PREFIX!r} (an MMRazor distillation checkpoint).')
    return student


def student_checkpoint(checkpoint: dict) -> dict:
    """An mmpretrain-style checkpoint of the student of a distillation one."""
    meta = {k: v for k, v in checkpoint.get('meta', {}).items()
            if k in ('epoch', 'iter', 'dataset_meta', 'seed', 'time',
                     'mmengine_version', 'experiment_name')}
    return dict(meta=meta,
                state_dict=student_state_dict(checkpoint['state_dict']))


def student_config(cfg: Config) -> Config:
    """A plain mmpretrain config of the student of a distillation config."""
    model = copy.deepcopy(cfg.model.architecture)
    model.pop('_scope_', None)
    # Its weights come from the student checkpoint, not from a download.
    if isinstance(model.get('backbone'), dict):
        model.backbone.pop('init_cfg', None)
    preprocessor = copy.deepcopy(cfg.get('data_preprocessor') or {})
    preprocessor.pop('_scope_', None)
    preprocessor.setdefault('type', 'ClsDataPreprocessor')
    model.setdefault('data_preprocessor', preprocessor)
    student = dict(default_scope='mmpretrain', model=model)
    for split in ('val', 'test'):
        if cfg.get(f'{split}_dataloader') is not None:
            student[f'{split}_dataloader'] = copy.deepcopy(
                cfg[f'{split}_dataloader'])
            student[f'{split}_evaluator'] = copy.deepcopy(
                cfg[f'{split}_evaluator'])
            # mmpretrain's plain loop, not MMRazor's teacher-and-student one.
            student[f'{split}_cfg'] = dict()
    return Config(student)


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Write ``student_*.pth`` beside each checkpoint, and ``student.py``.

    The student checkpoint has the student's keys without the
    ``architecture.`` prefix and mmpretrain-style ``meta``, so that
    ``mmpretrain.get_model('student.py', pretrained='student_epoch_1.pth')``
    and ``ImageClassificationInferencer`` use it directly.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        student_config(runner.cfg).dump(osp.join(runner.work_dir,
                                                 'student.py'))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner.rank != 0:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'architecture'):
            return  # not a distillation model
        meta = checkpoint.get('meta', {})
        by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        if by_epoch:
            name = f"student_epoch_{meta.get('epoch', runner.epoch)}.pth"
        else:
            name = f"student_iter_{meta.get('iter', runner.iter)}.pth"
        torch.save(student_checkpoint(checkpoint),
                   osp.join(runner.work_dir, name))
