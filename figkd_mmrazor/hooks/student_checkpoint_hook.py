"""Hand the distilled student to mmpretrain: its own checkpoint and config."""
import copy
import os.path as osp

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmrazor.registry import HOOKS

from ..checkpoints import student_checkpoint
from ..runs import atomic_save


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
        atomic_save(student_checkpoint(checkpoint),
                    osp.join(runner.work_dir, name))
