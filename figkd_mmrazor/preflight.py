"""Checks that run before the Runner is built, so bad input fails in seconds.

A missing dataset file or teacher checkpoint would otherwise surface after
models are built, or, worse, a checkpoint that does not fit its model would
only log a warning (mmengine loads checkpoints with ``strict=False``): a
partly random teacher would be distilled from, or a random model tested.
"""
import copy
import os

from mmengine.logging import print_log

from .checkpoints import (check_state_dict_fits, load_checkpoint,
                          state_dict_of, strip_prefix)
from .datasets import check_config


def build_on_cpu(registry, model_cfg, scope: str):
    """The model of ``model_cfg`` on the CPU, before weight initialisation.

    Not on the meta device: mmpretrain's constructors read tensor values
    (e.g. ``ResNet``'s drop path rates).
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(copy.deepcopy(model_cfg))


def _load_here(path: str):
    """The checkpoint at ``path``; None (with a log line) where another
    process of this machine reads it first.

    A checkpoint by URL that is not in torch.hub's cache is downloaded here,
    as mmengine would download it when building the model; only the first
    process of each machine (``LOCAL_RANK`` 0) fetches and checks it.
    """
    if '://' in path and int(os.environ.get('LOCAL_RANK', 0)) != 0:
        print_log(f'{path}: checked by the process with LOCAL_RANK 0.',
                  logger='current')
        return None
    return load_checkpoint(path, map_location='cpu')


def _config_name(cfg) -> str:
    filename = getattr(cfg, 'filename', None)
    return os.path.basename(filename) if filename else 'the config'


def _teacher_source(model: dict):
    """``(checkpoint, key prefix, setting)`` the teacher is loaded from:
    ``teacher_ckpt`` (by MMRazor), else a ``Pretrained`` init_cfg of the
    teacher (by mmengine, with its optional ``prefix``); None if neither."""
    if model.get('teacher_ckpt'):
        return str(model['teacher_ckpt']), '', 'model.teacher_ckpt'
    init = model['teacher'].get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained' and \
            init.get('checkpoint'):
        prefix = init.get('prefix') or ''
        if prefix and not prefix.endswith('.'):
            prefix += '.'
        return str(init['checkpoint']), prefix, 'model.teacher.init_cfg'
    return None


def check_teacher(cfg) -> None:
    """The teacher's checkpoint exists and fits the teacher of the config
    key by key and shape by shape, as MMRazor will load it.

    Raises:
        FileNotFoundError: a local checkpoint that does not exist.
        CheckpointMismatchError: missing, unexpected or mis-shaped keys,
            with the likely cause and the fix.
    """
    model = cfg.get('model') or {}
    if not isinstance(model.get('teacher'), dict):
        return
    source = _teacher_source(model)
    if source is None:
        return
    path, prefix, where = source
    if '://' not in path and not os.path.isfile(os.path.expanduser(path)):
        raise FileNotFoundError(
            f'Teacher checkpoint {path} does not exist. Train or download the '
            'teacher first (the teacher recipes: configs/teachers/ of '
            'figkd_mmrazor), or point to it with --cfg-options '
            'model.teacher_ckpt=PATH.')
    checkpoint = _load_here(path)
    if checkpoint is None:
        return
    state = state_dict_of(checkpoint)
    if prefix:
        state = strip_prefix(state, prefix)
        if not state:
            raise ValueError(
                f'Teacher checkpoint {path} has no keys starting with '
                f'{prefix!r} (the prefix of model.teacher.init_cfg).')
    from mmrazor.registry import MODELS
    teacher = build_on_cpu(MODELS, model['teacher'], 'mmrazor')
    check_state_dict_fits(
        teacher, state,
        f'Teacher checkpoint {path} ({where} of {_config_name(cfg)})',
        model_name='the teacher config')


def check_checkpoint_to_test(cfg) -> None:
    """``cfg.load_from`` fits the model of the config key by key and shape
    by shape, as the Runner will load it.

    Raises:
        CheckpointMismatchError: e.g. a student checkpoint on a distillation
            config or the reverse, with the fix.
    """
    path = cfg.get('load_from')
    if not path:
        return
    checkpoint = _load_here(str(path))
    if checkpoint is None:
        return
    from mmengine.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if 'teacher_ckpt' in model_cfg:
        model_cfg.teacher_ckpt = None  # the checkpoint holds the teacher
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = build_on_cpu(MODELS, model_cfg, cfg.get('default_scope') or 'mmengine')
    check_state_dict_fits(model, checkpoint, f'Checkpoint {path}',
                          model_name=f'the model of {_config_name(cfg)}')


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
    check_config(cfg, loaders=('test_dataloader', ))
    check_checkpoint_to_test(cfg)
