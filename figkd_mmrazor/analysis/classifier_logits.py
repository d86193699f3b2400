"""The teacher or student of a config, from a checkpoint, and its logits.

A config is a distillation config (``model.teacher`` and
``model.architecture``) or a plain mmpretrain classifier. A checkpoint is a
distillation checkpoint (``teacher.*`` and ``architecture.*``, split by
:func:`figkd_mmrazor.checkpoints.split_distillation_state`) or a classifier's
own. No pretrained weights are downloaded: every weight comes from the
checkpoint, and every weight of the model must be in it.
"""
import copy
from typing import Dict, Optional

import torch

from ..checkpoints import (check_state_dict_fits, load_checkpoint,
                           split_distillation_state, state_dict_of)
from ..config_facts import is_distillation


def model_config(cfg, which: str = 'teacher'):
    """The classifier config of ``which`` ('teacher' or 'student') in a
    distillation config; a plain classifier config's model for either."""
    if which not in ('teacher', 'student'):
        raise ValueError(f"which must be 'teacher' or 'student', got "
                         f'{which!r}.')
    if not is_distillation(cfg):
        return cfg.model
    return cfg.model.teacher if which == 'teacher' else cfg.model.architecture


def classifier_state(checkpoint: dict, which: str = 'teacher') -> dict:
    """The state dict of ``which`` in a distillation checkpoint, or the
    classifier checkpoint's own state dict."""
    state = state_dict_of(checkpoint)
    try:
        student, teacher = split_distillation_state(state)
    except ValueError:
        return state
    return teacher if which == 'teacher' else student


def build_classifier(model_cfg) -> torch.nn.Module:
    """An mmpretrain classifier from its config, without pretrained
    weights (``init_cfg`` is dropped)."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(dict(model_cfg))
    model_cfg.pop('_scope_', None)
    model_cfg.pop('data_preprocessor', None)
    model_cfg.pop('init_cfg', None)
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg['backbone'] = dict(model_cfg['backbone'])
        model_cfg['backbone'].pop('init_cfg', None)
    return MODELS.build(model_cfg)


def load_classifier(cfg, checkpoint_file: str, which: str = 'teacher',
                    model_cfg=None) -> torch.nn.Module:
    """``which`` model of ``cfg`` (or ``model_cfg``) with the weights of
    ``checkpoint_file``, in eval mode."""
    model = build_classifier(model_cfg if model_cfg is not None
                             else model_config(cfg, which))
    state = classifier_state(load_checkpoint(checkpoint_file), which)
    state = {k: v for k, v in state.items()
             if not k.startswith('data_preprocessor.')}
    check_state_dict_fits(model, state, f'{which} of {checkpoint_file}')
    model.load_state_dict(state)
    return model.eval()


def build_data_preprocessor(cfg):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    pre = copy.deepcopy(dict(pre or dict(type='ClsDataPreprocessor')))
    pre.pop('_scope_', None)
    pre.setdefault('type', 'ClsDataPreprocessor')
    return MODELS.build(pre)


def build_loader(cfg, split: str = 'test', batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None, data_seed: int = 0):
    """The config's dataloader of ``split`` ('train', 'val' or 'test'),
    unshuffled. The train split keeps the config's augmenting pipeline with
    each sample's random view keyed by ``(data_seed, epoch 0, index)``
    (:mod:`figkd_mmrazor.replay.keyed_views`): the views of a keyed training
    run's first epoch, the same on every call whatever the workers; drawn
    from the global generators instead, every call would see other crops."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from ..replay.keyed_views import key_loader
    key = f'{split}_dataloader'
    if not cfg.get(key):
        raise KeyError(f'the config has no {key}.')
    loader = copy.deepcopy(cfg[key])
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    if split == 'train':
        key_loader(loader, data_seed)
    if batch_size:
        loader.batch_size = batch_size
    if num_workers is not None:
        loader.num_workers = num_workers
        if num_workers == 0:
            loader.persistent_workers = False
    init_default_scope('mmpretrain')
    return Runner.build_dataloader(loader)


@torch.no_grad()
def collect_logits(models: Dict[str, torch.nn.Module], loader, preprocessor,
                   device='cpu', max_batches: Optional[int] = None):
    """Logits of each model on the loader's images, and the labels:
    ``({name: (N, C) float32 tensor}, (N,) long tensor)``."""
    device = torch.device(device)
    preprocessor = preprocessor.to(device).eval()
    for model in models.values():
        model.to(device).eval()
    outs = {name: [] for name in models}
    labels = []
    for i, data in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        data = preprocessor(data, False)
        for name, model in models.items():
            outs[name].append(
                model(data['inputs'], mode='tensor').float().cpu())
        labels.append(torch.cat([s.gt_label.view(-1)[:1].cpu()
                                 for s in data['data_samples']]))
    if not labels:
        raise ValueError('the dataloader gave no batch.')
    return ({n: torch.cat(v) for n, v in outs.items()},
            torch.cat(labels).long())


def resolve_device(device: str = 'auto') -> torch.device:
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return torch.device(device)
