"""What a teacher cache is for: everything that can change the teacher's
answers, and nothing else.

A cache serves a run when its fingerprint equals the run's. The fingerprint
holds the teacher's architecture (its config without ``init_cfg``,
``pretrained``, its own data preprocessor and the head's loss and metrics,
which cannot change a logit) and the sha256 of its checkpoint file; its
recorders and ``teacher_norm_eval``; the training pipeline; the training data
themselves (every sample's label and the sha256 of its image file, in
order, whatever the folder is called); the data preprocessors; the class
count; the cache's ``data_seed`` and ``dtype``.

Hashing a file reads it once: the digest is kept in
``$XDG_CACHE_HOME/figkd_mmrazor/file_sha256.json`` (default ``~/.cache``)
with the file's size, modification time and inode, and reused while they
are unchanged, so a regenerated image (same path, new bytes) is hashed
anew.
"""
import hashlib
import json
import os
import os.path as osp
from typing import List, Optional

import numpy as np

from ..config_facts import plain, short, type_name
from ..guides import guide
from ..runs import MISSING, atomic_write, nested_differences

SETTINGS = dict(dir=None, dtype='float32', data_seed=0)
DTYPES = {'float32': np.float32, 'float16': np.float16}
# Recorders whose record is the classifier's logits: this package's, and
# MMRazor's own on the head (e.g. ModuleOutputs on head.fc, as in MMRazor's
# KD configs); a recorded tensor of another shape is refused when recorded.
LOGIT_RECORDERS = ('Logits', 'LogitsRecorder', 'ModuleOutputs',
                   'ModuleOutputsRecorder', 'MethodOutputs',
                   'MethodOutputsRecorder')
# Parts of the teacher's config that cannot change its logits.
NOT_ANSWERS = ('init_cfg', 'pretrained', 'data_preprocessor')
NOT_HEAD_ANSWERS = ('loss', 'topk', 'cal_acc')
COMPARED = ("the teacher's architecture and checkpoint, its recorders and "
            'teacher_norm_eval, the training pipeline and data (each '
            "sample's label and image bytes), the data preprocessors, "
            'num_classes, data_seed and dtype')
DOC = guide('errors.md', 'Teacher cache')


class TeacherCacheError(ValueError):
    """A teacher cache that cannot serve this run, and what to change."""


class NotReplayableError(TeacherCacheError):
    """A config whose teacher answers cannot be recorded per sample; a
    comparison trains such runs with their teacher live."""


def settings_of(cfg, cache_dir=None) -> Optional[dict]:
    """``cfg.teacher_cache`` with its defaults, the folder replaced by
    ``cache_dir`` when given; None when no folder is set."""
    settings = dict(cfg.get('teacher_cache') or {})
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise TeacherCacheError(
            f'Unknown teacher_cache settings {unknown}; the settings are '
            f'{list(SETTINGS)}.')
    if cache_dir:
        settings['dir'] = str(cache_dir)
    if not settings.get('dir'):
        return None
    settings = dict(SETTINGS, **settings)
    if settings['dtype'] not in DTYPES:
        raise TeacherCacheError(
            f"teacher_cache.dtype={settings['dtype']!r}; choose one of "
            f'{list(DTYPES)}.')
    settings['data_seed'] = int(settings['data_seed'])
    return settings


def _refuse_if(condition, message) -> None:
    if condition:
        raise NotReplayableError(message)


def check_replayable(cfg) -> None:
    """Refuse configs whose teacher answers cannot be recorded per sample."""
    model = cfg.get('model') or {}
    kind = type_name(model)
    _refuse_if(kind not in ('SingleTeacherDistill', 'CachedTeacherDistill'),
               f'A teacher cache needs an MMRazor SingleTeacherDistill '
               f'model, but model.type is {kind!r}. Use a distillation '
               'config (configs/kd, configs/dkd, configs/figkd).')
    _refuse_if(model.get('teacher_trainable', False),
               'model.teacher_trainable=True: a teacher that learns gives '
               'other answers in every run, so they cannot be recorded and '
               'replayed. Freeze it (teacher_trainable=False) or drop the '
               'teacher cache.')
    _refuse_if(not model.get('teacher_ckpt'),
               "model.teacher_ckpt is not set: a teacher without a "
               "checkpoint is initialised from the run's seed, so its "
               'answers differ between runs. Set model.teacher_ckpt to the '
               'trained teacher.')
    _refuse_if(not model.get('teacher_norm_eval', True),
               'model.teacher_norm_eval=False: the frozen teacher would '
               "normalise with the statistics of each batch, so a sample's "
               'answer depends on its batch. Set teacher_norm_eval=True.')
    distiller = model.get('distiller') or {}
    _refuse_if(distiller.get('distill_deliveries'),
               'distiller.distill_deliveries pass teacher outputs into the '
               'student forward; a teacher cache replays logits only. '
               'Remove the deliveries or the teacher cache.')
    recorders = distiller.get('teacher_recorders') or {}
    others = {name: type_name(rec) for name, rec in recorders.items()
              if type_name(rec) not in LOGIT_RECORDERS}
    _refuse_if(not recorders or others,
               'A teacher cache records the classifier\'s logits: every '
               "teacher recorder must be dict(type='Logits') or MMRazor's "
               "ModuleOutputs / MethodOutputs on the head; found "
               f'{others or "none"}. Feature distillation cannot be '
               'replayed: drop the teacher cache (compare_recipes.py trains '
               'such a recipe with its teacher live).')
    for where in (cfg.get('data_preprocessor'),
                  model.get('data_preprocessor')):
        _refuse_if(isinstance(where, dict) and where.get('batch_augments'),
                   'The data preprocessor has batch_augments (Mixup, '
                   "CutMix): they mix the samples of a batch, so a sample's "
                   'view depends on its batch and cannot be replayed. Remove '
                   'batch_augments or the teacher cache.')
    train_cfg = cfg.get('train_cfg') or {}
    loop = type_name(train_cfg) or 'EpochBasedTrainLoop'
    _refuse_if(loop != 'EpochBasedTrainLoop'
               or not train_cfg.get('by_epoch', True),
               f'A teacher cache is recorded per epoch; train_cfg uses {loop} '
               f'(by_epoch={train_cfg.get("by_epoch", True)}). Use the '
               'EpochBasedTrainLoop: train_cfg=dict(by_epoch=True, '
               'max_epochs=N).')
    _refuse_if((cfg.get('default_hooks') or {}).get('sampler_seed', {})
               is None,
               "default_hooks.sampler_seed is None: mmengine's "
               'DistSamplerSeedHook tells the sampler the epoch, which keys '
               "every sample's augmentation. Keep "
               "default_hooks.sampler_seed=dict(type='DistSamplerSeedHook').")


# File digests ----------------------------------------------------------------

_MEMO: Optional[dict] = None


def _memo_path() -> str:
    root = os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache')
    return osp.join(root, 'figkd_mmrazor', 'file_sha256.json')


def _memo() -> dict:
    global _MEMO
    if _MEMO is None:
        try:
            with open(_memo_path()) as file:
                _MEMO = json.load(file)
        except (OSError, ValueError):
            _MEMO = {}  # none yet, or unreadable: digests are recomputed
    return _MEMO


def forget_digests() -> None:
    """Drop the digests read into this process (they are read again from
    the digest file when next needed)."""
    global _MEMO
    _MEMO = None


def _save_memo() -> None:
    path = _memo_path()
    try:
        os.makedirs(osp.dirname(path), exist_ok=True)
        text = json.dumps(_memo()).encode()
        atomic_write(path, lambda file: file.write(text))
    except OSError:
        pass  # a read-only home: the digests are recomputed next time


def file_sha256(path: str, save: bool = True) -> str:
    """sha256 of a file's bytes, reused while its size, modification time
    and inode are unchanged."""
    path = osp.realpath(osp.expanduser(path))
    stat = os.stat(path)
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    known = _memo().get(path)
    if known and known[:3] == stamp:
        return known[3]
    with open(path, 'rb') as file:
        digest = hashlib.file_digest(file, 'sha256').hexdigest()
    _memo()[path] = stamp + [digest]
    if save:
        _save_memo()
    return digest


def teacher_sha256(checkpoint: str) -> str:
    """sha256 of the teacher checkpoint file (a URL: of its copy in
    torch.hub's cache, fetched first as mmengine would fetch it)."""
    checkpoint = str(checkpoint)
    if checkpoint.startswith(('http://', 'https://')):
        import torch.hub
        from mmengine.runner import CheckpointLoader
        from urllib.parse import urlparse
        local = osp.join(torch.hub.get_dir(), 'checkpoints',
                         osp.basename(urlparse(checkpoint).path))
        if not osp.isfile(local):
            CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        checkpoint = local
    elif '://' in checkpoint:
        raise TeacherCacheError(
            f'model.teacher_ckpt={checkpoint}: a teacher cache hashes the '
            'checkpoint file, so it must be a local path or an http(s) URL. '
            'Copy it to a local disk.')
    return file_sha256(checkpoint)


def data_fingerprint(dataset_cfg) -> dict:
    """``dict(samples=N, sha256=...)`` over the samples mmpretrain builds
    from ``dataset_cfg``: each one's annotation (label, ...) and the bytes
    of its image, in order; the paths themselves are not hashed."""
    import mmpretrain.datasets  # noqa: F401  (registers the dataset types)
    from mmpretrain.registry import DATASETS
    cfg = plain(dataset_cfg)
    if 'pipeline' in cfg:
        cfg['pipeline'] = []
    dataset = DATASETS.build(cfg)
    digest = hashlib.sha256()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        entry = {}
        for key, value in sorted(info.items()):
            if key == 'sample_idx':
                continue
            if key == 'img_path':
                value = file_sha256(value, save=False)
            elif isinstance(value, np.ndarray):
                value = hashlib.sha256(np.ascontiguousarray(value)).hexdigest()
            entry[key] = value
        digest.update(json.dumps(entry, sort_keys=True,
                                 default=str).encode())
    _save_memo()
    return dict(samples=len(dataset), sha256=digest.hexdigest())


def train_dataset(cfg) -> dict:
    """The training dataset's config, without keyed augmentation's
    wrapper."""
    dataset = cfg.train_dataloader.dataset
    if type_name(dataset) == 'KeyedAugmentDataset':
        dataset = dataset.dataset
    return dataset


def _answers_only(cfg):
    """A model config without what cannot change its outputs."""
    if isinstance(cfg, dict):
        out = {k: _answers_only(v) for k, v in cfg.items()
               if k not in NOT_ANSWERS}
        if isinstance(out.get('head'), dict):
            for key in NOT_HEAD_ANSWERS:
                out['head'].pop(key, None)
        return out
    if isinstance(cfg, list):
        return [_answers_only(item) for item in cfg]
    return cfg


def fingerprint(cfg, settings: dict) -> dict:
    """What a cache must have been recorded for to serve ``cfg``. Hashes the
    teacher checkpoint and the training data (see the module's note)."""
    check_replayable(cfg)
    model = plain(cfg.model)
    dataset = plain(train_dataset(cfg))
    return dict(
        teacher=_answers_only(model['teacher']),
        teacher_checkpoint_sha256=teacher_sha256(model['teacher_ckpt']),
        teacher_norm_eval=model.get('teacher_norm_eval', True),
        teacher_recorders=model['distiller']['teacher_recorders'],
        train_pipeline=dataset.get('pipeline'),
        train_data=data_fingerprint(dataset),
        data_preprocessor=plain(dict(config=cfg.get('data_preprocessor'),
                                     model=model.get('data_preprocessor'))),
        num_classes=(model['teacher'].get('head') or {}).get('num_classes'),
        data_seed=settings['data_seed'], dtype=settings['dtype'])


def differences(cached, wanted) -> List[str]:
    """Readable list of where two fingerprints differ."""
    found = []
    for key, old, new in nested_differences(cached, wanted):
        old = 'not in the cache' if old is MISSING else \
            f'{short(old)} in the cache'
        new = 'not in this config' if new is MISSING else \
            f'{short(new)} in this config'
        found.append(f'{key}: {old}, {new}')
    return found


def check_same(cached, wanted, cache_dir) -> None:
    """Refuse a cache recorded for something else, naming what differs."""
    found = differences(cached, wanted)
    if found:
        hint = ''
        if any(line.startswith('train_data.') for line in found):
            hint = ('\nThe training images or labels are not those the '
                    'cache was recorded on.')
        raise TeacherCacheError(
            f'The teacher cache in {cache_dir} was recorded for another '
            'teacher or other data, so its answers would be stale:\n  ' +
            '\n  '.join(found[:8]) + f'{hint}\n(Compared: {COMPARED}.) '
            'Use another teacher_cache.dir (or --teacher-cache) for this '
            f'config, or delete the folder to record it anew. See {DOC}.')
