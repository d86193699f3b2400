"""Record a frozen teacher's logits once, replay them in every later run.

A study of distillation recipes trains many students from one frozen teacher
on the same data; the teacher's answers are the same in every run. With a
teacher cache, the first run (recording) writes what the teacher recorders
capture for every (epoch, sample) into a folder; every later run (replaying)
reads them back into the same recorders and skips the teacher's forward pass,
so KD, DKD, FiGKD and any other MMRazor logit loss run unchanged.

The teacher must see the same view of a sample in every run, so the training
data get keyed augmentation (:mod:`figkd_mmrazor.keyed_augmentation`): each
sample's random crop and flip is a function of (``data_seed``, epoch, index)
only. The model seed, batch size, batch order, number of workers and number
of processes may differ between the recording and the replaying runs.

Turn it on with one setting::

    teacher_cache = dict(dir='work_dirs/teacher_cache/cub_r50_r18',
                         dtype='float32', data_seed=0)

or ``tools/train.py CONFIG --teacher-cache DIR``. :func:`apply_to_config`
then decides, before the Runner exists: a folder without a cache records, a
cache that matches the config and holds every epoch replays, and anything
else is refused with :class:`TeacherCacheError` naming what differs.

Layout of the folder (no pickle anywhere)::

    manifest.json              what the cache is for, and the epochs it holds
    recording.lock             while a recording run is alive (host, pid)
    epoch_0003/rank0-of-2.npz  per process and epoch: ``index`` (int64 [n])
                               and one [n, num_classes] array per recorder

Every file is written to a temporary name and renamed into place; each
process writes only its own samples; only rank 0 writes the manifest, and an
epoch enters the manifest once every sample of it is on disk.

Size (:func:`cache_bytes`): per sample, epoch and class, 4 bytes (float32)
or 2 bytes (``dtype='float16'``) per teacher recorder, plus 8 bytes per
sample and epoch for its index. CUB-200-2011 (5,994 training images, 200
classes) over 100 epochs: 5994 x 100 x (200 x 4 + 8) bytes = 484 MB in
float32, 245 MB in float16. A recording run refuses to start when the disk
has less free; a replaying run holds one epoch in memory (4.8 MB here).
"""
import copy
import datetime
import hashlib
import json
import os
import os.path as osp
import shutil
import socket
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, get_dist_info
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmrazor.models import SingleTeacherDistill
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS

from .guides import guide
from .keyed_augmentation import (KeyedAugmentDataset, sample_key,
                                 use_keyed_augmentation)
from .runs import MISSING, atomic_write, nested_differences

FORMAT = 'figkd_mmrazor.teacher_cache/1'
MANIFEST = 'manifest.json'
LOCK = 'recording.lock'
DTYPES = {'float32': np.float32, 'float16': np.float16}
SETTINGS = ('dir', 'dtype', 'data_seed')
LOGITS_RECORDERS = ('Logits', 'LogitsRecorder')
# Dataset settings that change how a dataset is loaded, not what it holds.
_LOADING_ONLY = ('lazy_init', 'serialize_data', 'max_refetch')
DOC = guide('errors.md', 'Teacher cache')


class TeacherCacheError(ValueError):
    """A teacher cache that cannot serve this run, and what to change."""


# Size ---------------------------------------------------------------------

def cache_bytes(num_samples: int, num_classes: int, epochs: int,
                dtype: str = 'float32', num_recorders: int = 1) -> int:
    """Bytes of the data files of a cache (the manifest is a few kB).

    Per sample and epoch: ``num_recorders * num_classes`` values of
    ``dtype`` plus its int64 index.
    """
    per_sample = (num_recorders * num_classes *
                  np.dtype(DTYPES[dtype]).itemsize + 8)
    return int(num_samples) * int(epochs) * per_sample


def _size(n: int) -> str:
    if n < 10**6:
        return f'{n} bytes'
    return f'{n / 1e6:.1f} MB' if n < 10**9 else f'{n / 1e9:.2f} GB'


def check_disk_space(cache_dir: str, needed: int) -> None:
    """Refuse if the file system of ``cache_dir`` cannot take ``needed``."""
    where = osp.abspath(cache_dir)
    while not osp.exists(where):
        where = osp.dirname(where)
    free = shutil.disk_usage(where).free
    if free < needed:
        raise TeacherCacheError(
            f'The teacher cache in {cache_dir} needs {_size(needed)} more '
            f'but only {_size(free)} are free there. Put '
            'teacher_cache.dir (or --teacher-cache) on a larger disk, or use '
            "teacher_cache.dtype='float16' (half the size).")


# What a cache is for --------------------------------------------------------

def _plain(value):
    """JSON-comparable copy of a config value (tuples -> lists, ...)."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _type_name(cfg) -> str:
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    return name.rsplit('.', 1)[-1]


def teacher_checkpoint_sha256(path: str) -> str:
    """sha256 over the checkpoint's tensors (names, dtypes, shapes, bytes).

    The weights, not the file: re-saving the same weights keeps the hash.
    """
    from mmengine.runner import CheckpointLoader
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        if not torch.is_tensor(value):
            continue
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f'{key}|{tensor.dtype}|{tuple(value.shape)}|'.encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _train_dataset(cfg) -> dict:
    dataset = cfg.train_dataloader.dataset
    if _type_name(dataset) == KeyedAugmentDataset.__name__:
        dataset = dataset.dataset
    dataset = _plain(dataset)
    for key in _LOADING_ONLY:
        dataset.pop(key, None)
    return dataset


def check_cacheable(cfg) -> None:
    """Refuse configs whose teacher answers cannot be recorded per sample."""
    model = cfg.get('model') or {}
    kind = _type_name(model)
    if kind not in ('SingleTeacherDistill', 'CachedTeacherDistill'):
        raise TeacherCacheError(
            f'A teacher cache needs an MMRazor SingleTeacherDistill model, '
            f'but model.type is {kind!r}. Use a distillation config '
            '(configs/kd, configs/dkd, configs/figkd).')
    if model.get('teacher_trainable', False):
        raise TeacherCacheError(
            'model.teacher_trainable=True: a teacher that learns gives other '
            'answers in every run, so they cannot be recorded and replayed. '
            'Freeze it (teacher_trainable=False) or drop the teacher cache.')
    if not model.get('teacher_ckpt'):
        raise TeacherCacheError(
            'model.teacher_ckpt is not set: a teacher without a checkpoint '
            'is initialised from the run\'s seed, so its answers differ '
            'between runs. Set model.teacher_ckpt to the trained teacher.')
    if not model.get('teacher_norm_eval', True):
        raise TeacherCacheError(
            'model.teacher_norm_eval=False: the frozen teacher would '
            'normalise with the statistics of each batch, so a sample\'s '
            'answer depends on its batch. Set teacher_norm_eval=True.')
    distiller = model.get('distiller') or {}
    if distiller.get('distill_deliveries'):
        raise TeacherCacheError(
            'distiller.distill_deliveries pass teacher outputs into the '
            'student forward; a teacher cache replays logits only. Remove '
            'the deliveries or the teacher cache.')
    recorders = distiller.get('teacher_recorders') or {}
    others = {name: _type_name(rec) for name, rec in recorders.items()
              if _type_name(rec) not in LOGITS_RECORDERS}
    if not recorders or others:
        raise TeacherCacheError(
            'A teacher cache records logits: every teacher recorder must be '
            f"dict(type='Logits'); found {others or 'none'}. Feature "
            'distillation cannot be replayed from the cache.')
    for where in (cfg.get('data_preprocessor'),
                  model.get('data_preprocessor')):
        if isinstance(where, dict) and where.get('batch_augments'):
            raise TeacherCacheError(
                'The data preprocessor has batch_augments (Mixup, CutMix): '
                'they mix the samples of a batch, so a sample\'s view depends '
                'on its batch and cannot be replayed. Remove batch_augments '
                'or the teacher cache.')
    train_cfg = cfg.get('train_cfg') or {}
    loop = _type_name(train_cfg) or 'EpochBasedTrainLoop'
    if loop != 'EpochBasedTrainLoop' or not train_cfg.get('by_epoch', True):
        raise TeacherCacheError(
            f'A teacher cache is recorded per epoch; train_cfg uses {loop} '
            f'(by_epoch={train_cfg.get("by_epoch", True)}). Use the '
            'EpochBasedTrainLoop: train_cfg=dict(by_epoch=True, '
            'max_epochs=N).')
    if (cfg.get('default_hooks') or {}).get('sampler_seed', {}) is None:
        raise TeacherCacheError(
            'default_hooks.sampler_seed is None: mmengine\'s '
            'DistSamplerSeedHook tells the sampler the epoch, which keys '
            'every sample\'s augmentation. Keep '
            "default_hooks.sampler_seed=dict(type='DistSamplerSeedHook').")


def cache_fingerprint(cfg, dtype: str = 'float32', data_seed: int = 0) -> dict:
    """What a cache must have been recorded for to serve ``cfg``."""
    check_cacheable(cfg)
    if dtype not in DTYPES:
        raise TeacherCacheError(
            f'teacher_cache.dtype={dtype!r}; choose one of {list(DTYPES)}.')
    model = cfg.model
    teacher = model.teacher
    head = teacher.get('head', {}) if isinstance(teacher, dict) else {}
    return _plain(dict(
        teacher=teacher,
        teacher_checkpoint_sha256=teacher_checkpoint_sha256(
            model.teacher_ckpt),
        teacher_norm_eval=model.get('teacher_norm_eval', True),
        teacher_recorders=model.distiller.teacher_recorders,
        train_dataset=_train_dataset(cfg),
        data_preprocessor=dict(config=cfg.get('data_preprocessor'),
                               model=model.get('data_preprocessor')),
        num_classes=head.get('num_classes'),
        data_seed=int(data_seed),
        dtype=dtype))


def _short(value, limit=160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def differences(cached, wanted) -> List[str]:
    """Readable list of where two fingerprints differ."""
    found = []
    for key, old, new in nested_differences(cached, wanted):
        if old is MISSING:
            found.append(f'{key}: not in the cache, {_short(new)} in this '
                         'config')
        elif new is MISSING:
            found.append(f'{key}: {_short(old)} in the cache, not in this '
                         'config')
        else:
            found.append(f'{key}: {_short(old)} in the cache, {_short(new)} '
                         'in this config')
    return found


# Files -----------------------------------------------------------------------

def _write_json(path: str, obj) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True).encode()
    atomic_write(path, lambda file: file.write(text))


def read_manifest(cache_dir: str) -> Optional[dict]:
    """The cache's manifest, or None where there is none."""
    path = osp.join(cache_dir, MANIFEST)
    if not osp.isfile(path):
        return None
    with open(path) as file:
        manifest = json.load(file)
    if manifest.get('format') != FORMAT:
        raise TeacherCacheError(
            f'{path} is not a teacher cache manifest of this version '
            f'(format {manifest.get("format")!r}, expected {FORMAT!r}). '
            'Record a new cache in another folder.')
    return manifest


def _read_lock(cache_dir: str) -> Optional[dict]:
    try:
        with open(osp.join(cache_dir, LOCK)) as file:
            return json.load(file)
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # being written this instant: held


def _lock_is_live(lock: Optional[dict]) -> bool:
    """Held by a live process? On another host we cannot tell: assume so."""
    if lock is None:
        return False
    if lock.get('host') != socket.gethostname() or 'pid' not in lock:
        return True
    try:
        os.kill(int(lock['pid']), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _take_lock(cache_dir: str, work_dir: str, replace: bool) -> None:
    """Create the recording lock; exclusive, so two runs cannot both own it.

    ``replace``: the lock there was judged stale (or handed over by a
    resumed run) and is removed first.
    """
    path = osp.join(cache_dir, LOCK)
    if replace and osp.exists(path):
        os.remove(path)
    text = json.dumps(dict(
        host=socket.gethostname(), pid=os.getpid(),
        work_dir=osp.abspath(work_dir),
        started=datetime.datetime.now().isoformat(timespec='seconds')))
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise TeacherCacheError(_lock_text(cache_dir, _read_lock(cache_dir)))
    with os.fdopen(fd, 'w') as file:
        file.write(text)


def _lock_text(cache_dir: str, lock: dict) -> str:
    return (f'{cache_dir} is being recorded by process {lock.get("pid")} on '
            f'{lock.get("host")} (work dir {lock.get("work_dir")}, started '
            f'{lock.get("started")}). Wait until it has finished; if that '
            f'run is dead, resume it (tools/train.py ... --resume) or delete '
            f'{osp.join(cache_dir, LOCK)}.')


def _epochs(manifest: Optional[dict]) -> List[int]:
    return sorted(int(e) for e in (manifest or {}).get('epochs', {}))


def _ranges(epochs) -> str:
    epochs, parts = sorted(epochs), []
    for e in epochs:
        if parts and e == parts[-1][1] + 1:
            parts[-1][1] = e
        else:
            parts.append([e, e])
    return ', '.join(str(a) if a == b else f'{a}-{b}' for a, b in parts) \
        or 'none'


# Deciding what a run does ----------------------------------------------------

@dataclass
class CacheStatus:
    """What a run of a config would do with a cache folder.

    ``mode`` is ``'record'`` or ``'replay'``; ``complete`` is True when the
    cache holds every epoch the config trains (a run would replay).
    """
    mode: str
    cache_dir: str
    epochs_needed: int
    epochs_recorded: List[int] = field(default_factory=list)
    recording_in_progress: bool = False
    manifest: Optional[dict] = None
    fingerprint: Optional[dict] = None

    @property
    def complete(self) -> bool:
        return self.mode == 'replay'


def _settings(cfg, cache_dir=None) -> Optional[dict]:
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
    settings.setdefault('dtype', 'float32')
    settings.setdefault('data_seed', 0)
    return settings


def cache_status(cfg, cache_dir: Optional[str] = None,
                 resume: Optional[bool] = None) -> CacheStatus:
    """Decide record or replay for ``cfg`` (as merged by tools/train.py).

    ``cache_dir`` defaults to ``cfg.teacher_cache.dir``; ``resume`` to
    ``cfg.resume``. Raises :class:`TeacherCacheError` when the cache was
    recorded for something else, is incomplete (and the run does not resume
    its recording), or is being recorded right now.
    """
    settings = _settings(cfg, cache_dir)
    if settings is None:
        raise TeacherCacheError('No teacher cache folder: set '
                                'teacher_cache.dir or pass --teacher-cache.')
    resume = bool(cfg.get('resume')) if resume is None else resume
    return _status(cfg, settings, resume)


def _status(cfg, settings: dict, resume: bool) -> CacheStatus:
    cache_dir = settings['dir']
    wanted = cache_fingerprint(cfg, settings['dtype'], settings['data_seed'])
    needed = int(cfg.train_cfg.max_epochs)
    manifest = read_manifest(cache_dir)
    recorded = _epochs(manifest)
    live = _lock_is_live(_read_lock(cache_dir))
    status = CacheStatus('record', cache_dir, needed, recorded, live,
                         manifest, wanted)
    if manifest is None or (not recorded and not live):
        return status  # nothing recorded that could be lost
    found = differences(manifest['fingerprint'], wanted)
    if found:
        raise TeacherCacheError(
            f'The teacher cache in {cache_dir} was recorded for another '
            'teacher or other data, so its answers would be stale:\n  ' +
            '\n  '.join(found[:8]) + '\nUse another teacher_cache.dir (or '
            '--teacher-cache) for this config, or delete the folder to '
            f'record it anew. See {DOC}.')
    missing = sorted(set(range(needed)) - set(recorded))
    if not missing:
        status.mode = 'replay'
    elif live:
        raise TeacherCacheError(_lock_text(cache_dir, _read_lock(cache_dir)))
    elif not resume:
        raise TeacherCacheError(
            f'The teacher cache in {cache_dir} is incomplete: it holds epochs '
            f'{_ranges(recorded)}, this config trains epochs 0-{needed - 1} '
            f'(missing {_ranges(missing)}). If its recording run was '
            'interrupted, resume that run (tools/train.py CONFIG '
            '--teacher-cache DIR --work-dir ITS_WORK_DIR --resume); '
            'otherwise record into another folder.')
    return status


def apply_to_config(cfg, cache_dir: Optional[str] = None):
    """Turn the teacher cache on in ``cfg`` (in place), or leave it alone.

    On when ``cache_dir`` is given or ``cfg.teacher_cache.dir`` is set. The
    model becomes ``CachedTeacherDistill``, the training data get keyed
    augmentation with ``teacher_cache.data_seed``, and ``TeacherCacheHook``
    is added. Whether the run records or replays is decided here by
    :func:`cache_status`, so a cache that cannot serve the config is refused
    before the Runner exists, and again when training starts (the folder
    may have changed meanwhile). Returns ``cfg``.
    """
    settings = _settings(cfg, cache_dir)
    if settings is None:
        return cfg
    settings['dir'] = osp.abspath(settings['dir'])
    status = cache_status(cfg, settings['dir'])
    print(f'Teacher cache: {status.mode} {settings["dir"]}', flush=True)
    cfg.teacher_cache = settings
    cfg.model.type = 'CachedTeacherDistill'
    cfg.model.teacher_cache = dict(dir=settings['dir'],
                                   dtype=settings['dtype'])
    use_keyed_augmentation(cfg, int(settings['data_seed']))
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(_type_name(h) == 'TeacherCacheHook' for h in hooks):
        hooks.append(dict(type='TeacherCacheHook'))
    cfg.custom_hooks = hooks
    return cfg


# Running ---------------------------------------------------------------------

def _agree(fn) -> None:
    """Run ``fn`` on rank 0; every rank raises the error it raised."""
    rank, world = get_dist_info()
    message = [None]
    if rank == 0:
        try:
            fn()
        except TeacherCacheError as err:
            message[0] = str(err)
    if world > 1:
        broadcast_object_list(message, src=0)
    if message[0] is not None:
        raise TeacherCacheError(message[0])


class TeacherCache:
    """The per-process side of a cache folder: buffer, write, read.

    ``mode`` (``'record'`` or ``'replay'``) is decided by :meth:`start`,
    when training starts.

    Args:
        dir (str): The cache folder.
        dtype (str): ``'float32'`` or ``'float16'``.
    """

    def __init__(self, dir: str, dtype: str = 'float32') -> None:
        if dtype not in DTYPES:
            raise TeacherCacheError(
                f'teacher_cache.dtype={dtype!r}; choose one of '
                f'{list(DTYPES)}.')
        self.dir, self.dtype = dir, dtype
        self.mode: Optional[str] = None
        self.np_dtype = DTYPES[dtype]
        self._rows: Dict[str, list] = {}
        self._index: list = []
        self._epoch: Optional[int] = None
        self._loaded: Optional[tuple] = None  # (epoch, {name: array})
        self._owns_lock = False
        self.num_samples: Optional[int] = None

    # recording -------------------------------------------------------------
    def record(self, keys, records: Dict[str, torch.Tensor]) -> Dict:
        """Buffer one batch; return the records as the cache will hold them
        (rounded to its dtype), for the student to use in this run too."""
        epochs = {epoch for epoch, _ in keys}
        if len(epochs) != 1 or (self._epoch is not None
                                and epochs != {self._epoch}):
            raise TeacherCacheError(
                f'Batch of epochs {sorted(epochs)} while recording epoch '
                f'{self._epoch}: TeacherCacheHook must be in custom_hooks '
                '(apply_to_config adds it).')
        self._epoch = epochs.pop()
        self._index.append(np.array([i for _, i in keys], dtype=np.int64))
        rounded = {}
        for name, logits in records.items():
            rows = logits.detach().to('cpu', torch.float32).numpy().astype(
                self.np_dtype)
            self._rows.setdefault(name, []).append(rows)
            rounded[name] = logits if self.dtype == 'float32' else \
                torch.from_numpy(rows).to(logits.device, logits.dtype)
        return rounded

    def _shard(self, epoch: int, rank: int, world: int) -> str:
        return f'epoch_{epoch:04d}/rank{rank}-of-{world}.npz'

    def write_epoch(self, epoch: int) -> None:
        """Write this process's samples of ``epoch`` (every process)."""
        if self._epoch not in (None, epoch):
            raise TeacherCacheError(
                f'Recorded samples of epoch {self._epoch} at the end of '
                f'epoch {epoch}: the sampler must be a KeyedSampler told the '
                'epoch by DistSamplerSeedHook.')
        rank, world = get_dist_info()
        arrays = dict(index=np.concatenate(self._index) if self._index else
                      np.zeros(0, np.int64))
        for name, rows in self._rows.items():
            arrays[name] = np.concatenate(rows)
        path = osp.join(self.dir, self._shard(epoch, rank, world))
        os.makedirs(osp.dirname(path), exist_ok=True)
        atomic_write(path, lambda file: np.savez(file, **arrays))
        self._rows, self._index, self._epoch = {}, [], None

    def commit_epoch(self, epoch: int, names) -> None:
        """Rank 0, after every shard is written: check, enter the epoch."""
        _, world = get_dist_info()
        files = [self._shard(epoch, r, world) for r in range(world)]
        seen = np.zeros(self.num_samples, dtype=bool)
        for rel in files:
            if not osp.isfile(osp.join(self.dir, rel)):
                raise TeacherCacheError(
                    f'{rel} was written by another process but is not '
                    f'visible in {self.dir}: with several nodes, '
                    'teacher_cache.dir must be on a filesystem they share.')
            with np.load(osp.join(self.dir, rel), allow_pickle=False) as npz:
                if set(npz.files) != {'index', *names}:
                    raise TeacherCacheError(
                        f'{rel} holds {sorted(npz.files)}, expected index '
                        f'and {sorted(names)}.')
                seen[npz['index']] = True
        if not seen.all():
            raise TeacherCacheError(
                f'Epoch {epoch} was not recorded for samples '
                f'{np.flatnonzero(~seen)[:10].tolist()}: the sampler must '
                'visit every sample once per epoch (DefaultSampler).')
        manifest = read_manifest(self.dir)
        manifest['epochs'][str(epoch)] = dict(files=files,
                                              samples=self.num_samples)
        _write_json(osp.join(self.dir, MANIFEST), manifest)
        folder = osp.join(self.dir, osp.dirname(files[0]))
        for name in os.listdir(folder):  # shards of an interrupted run
            if f'{osp.basename(folder)}/{name}' not in files:
                os.remove(osp.join(folder, name))

    # replaying -------------------------------------------------------------
    def _load(self, epoch: int, names) -> Dict[str, np.ndarray]:
        manifest = read_manifest(self.dir) or {}
        entry = manifest.get('epochs', {}).get(str(epoch))
        if entry is None:
            raise TeacherCacheError(
                f'Epoch {epoch} is not in the teacher cache {self.dir} (it '
                f'holds epochs {_ranges(_epochs(manifest))}). Record the '
                'cache for as many epochs as this config trains.')
        size = manifest['dataset_length']
        arrays, seen = {}, np.zeros(size, dtype=bool)
        for rel in entry['files']:
            path = osp.join(self.dir, rel)
            if not osp.isfile(path):
                raise TeacherCacheError(
                    f'{path} is listed in the manifest of the teacher cache '
                    'but missing: the cache was damaged. Record it anew.')
            with np.load(path, allow_pickle=False) as npz:
                index = npz['index']
                for name in names:
                    rows = npz[name]
                    if name not in arrays:
                        arrays[name] = np.zeros((size, ) + rows.shape[1:],
                                                rows.dtype)
                    arrays[name][index] = rows
                seen[index] = True
        if not seen.all():
            raise TeacherCacheError(
                f'Samples {np.flatnonzero(~seen)[:10].tolist()} of epoch '
                f'{epoch} are not in the teacher cache {self.dir}.')
        return arrays

    def replay(self, keys, names, device) -> Dict[str, torch.Tensor]:
        """The recorded logits of the samples ``keys``, as a batch."""
        epochs = {epoch for epoch, _ in keys}
        if len(epochs) != 1:
            raise TeacherCacheError(
                f'One batch spans epochs {sorted(epochs)}.')
        epoch = epochs.pop()
        if self._loaded is None or self._loaded[0] != epoch:
            self._loaded = (epoch, self._load(epoch, names))
        index = np.array([i for _, i in keys], dtype=np.int64)
        return {name: torch.from_numpy(rows[index]).to(device, torch.float32)
                for name, rows in self._loaded[1].items()}

    # before and after training -----------------------------------------------
    def start(self, runner, names) -> None:
        """Decide record or replay, check the cache against the run and,
        to record, the free disk space; take the recording lock."""
        dataset = runner.train_dataloader.dataset
        if not isinstance(dataset, KeyedAugmentDataset):
            raise TeacherCacheError(
                'The training dataset is not a KeyedAugmentDataset: a cached '
                'teacher needs each sample\'s augmentation keyed by '
                '(epoch, index). Turn the cache on with teacher_cache.dir or '
                'tools/train.py --teacher-cache (they wrap it).')
        self.num_samples = len(dataset)
        cfg = copy.deepcopy(runner.cfg)
        settings = dict(dir=self.dir, dtype=self.dtype,
                        data_seed=dataset.data_seed)
        mode = [None]

        def decide():
            mode[0] = self._start(cfg, settings, runner.epoch, names)

        _agree(decide)
        if get_dist_info()[1] > 1:
            broadcast_object_list(mode, src=0)
        self.mode = mode[0]
        barrier()

    def _start(self, cfg, settings, first, names) -> str:
        status = _status(cfg, settings, bool(cfg.get('resume')))
        manifest, recorded = status.manifest, status.epochs_recorded
        if manifest is not None and recorded and \
                manifest['dataset_length'] != self.num_samples:
            raise TeacherCacheError(
                f'The teacher cache in {self.dir} holds '
                f'{manifest["dataset_length"]} samples per epoch, the '
                f'training set has {self.num_samples}. Record this dataset '
                'into another folder.')
        if status.mode == 'replay':
            return 'replay'
        before = sorted(set(range(first)) - set(recorded))
        if before:
            raise TeacherCacheError(
                f'This run resumes at epoch {first}, but the teacher cache '
                f'in {self.dir} lacks epochs {_ranges(before)} it already '
                'trained: the checkpoint is not from the run that recorded '
                'this cache. Record into a new folder from the start.')
        lock = _read_lock(self.dir)
        if _lock_is_live(lock) and lock.get('host') == socket.gethostname():
            raise TeacherCacheError(_lock_text(self.dir, lock))
        check_disk_space(self.dir, cache_bytes(
            self.num_samples, status.fingerprint['num_classes'] or 0,
            status.epochs_needed - first, self.dtype, len(names)))
        self.begin_recording(status.fingerprint, self.num_samples,
                             status.epochs_needed, cfg.work_dir,
                             manifest if recorded else None,
                             stale_lock=lock is not None)
        return 'record'

    def begin_recording(self, fingerprint: dict, num_samples: int,
                        epochs: int, work_dir: str,
                        manifest: Optional[dict] = None,
                        stale_lock: bool = False) -> None:
        """Take the recording lock and write the manifest (rank 0 only).

        ``manifest``: that of the cache being continued (a resumed
        recording), else a new one is written. :meth:`start` calls this
        after its checks; a benchmark may call it directly.
        """
        os.makedirs(self.dir, exist_ok=True)
        _take_lock(self.dir, work_dir, replace=stale_lock)
        self._owns_lock = True
        self.mode, self.num_samples = 'record', num_samples
        if manifest is None:
            manifest = dict(format=FORMAT, fingerprint=fingerprint,
                            dataset_length=num_samples, epochs={})
        manifest['epochs_planned'] = epochs
        manifest['recorded_by'] = dict(
            host=socket.gethostname(), world_size=get_dist_info()[1],
            work_dir=osp.abspath(work_dir),
            date=datetime.date.today().isoformat())
        _write_json(osp.join(self.dir, MANIFEST), manifest)

    def finish_epoch(self, epoch: int, names) -> None:
        """Recording: every process writes its samples of ``epoch``, then
        rank 0 enters the epoch in the manifest."""
        if self.mode != 'record':
            return
        self.write_epoch(epoch)
        barrier()
        _agree(lambda: self.commit_epoch(epoch, names))

    def finish(self) -> None:
        """Release the recording lock (a cache nobody records any more)."""
        if self._owns_lock:
            lock = osp.join(self.dir, LOCK)
            if osp.exists(lock):
                os.remove(lock)
            self._owns_lock = False


@MODELS.register_module()
class CachedTeacherDistill(SingleTeacherDistill):
    """MMRazor's ``SingleTeacherDistill`` with a recorded teacher.

    ``record``: the frozen teacher runs as usual and its recorders' logits,
    rounded to the cache's dtype, are both used and kept for the cache.
    ``replay``: the teacher does not run; its recorders are filled from the
    cache by each sample's ``(epoch, index)`` key. Everything after the
    teacher (student forward, its losses, the distillation losses) is
    MMRazor's.

    Args:
        teacher_cache (dict): ``dict(dir=..., dtype='float32'|'float16')``,
            written by :func:`figkd_mmrazor.teacher_cache.apply_to_config`;
            ``TeacherCacheHook`` decides record or replay when training
            starts.
        **kwargs: Those of ``SingleTeacherDistill``.
    """

    def __init__(self, *args, teacher_cache: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.teacher_trainable:
            raise TeacherCacheError(
                'model.teacher_trainable=True cannot be cached: a teacher '
                'that learns gives other answers in every run.')
        self.teacher_cache = TeacherCache(**teacher_cache)

    @property
    def _recorders(self):
        return self.distiller.teacher_recorders.recorders

    def _teacher_records(self, batch_inputs, data_samples, keys) -> None:
        cache = self.teacher_cache
        if cache.mode is None:
            raise TeacherCacheError(
                'CachedTeacherDistill trained without TeacherCacheHook: add '
                "dict(type='TeacherCacheHook') to custom_hooks (or turn the "
                'cache on with teacher_cache.dir / --teacher-cache).')
        if cache.mode == 'replay':
            records = cache.replay(keys, list(self._recorders),
                                   batch_inputs.device)
        else:
            with self.distiller.teacher_recorders, self.distiller.deliveries:
                with torch.no_grad():
                    self.teacher(batch_inputs, data_samples, mode='loss')
            live = {}
            for name, recorder in self._recorders.items():
                if len(recorder.data_buffer) != 1:
                    raise TeacherCacheError(
                        f'Teacher recorder {name!r} recorded '
                        f'{len(recorder.data_buffer)} outputs in one forward '
                        'pass; a teacher cache stores exactly one.')
                live[name] = recorder.data_buffer[0]
            records = cache.record(keys, live)
        for name, recorder in self._recorders.items():
            recorder.reset_data_buffer()
            recorder.data_buffer.append(records[name])

    def loss(self, batch_inputs, data_samples=None):
        """MMRazor's loss, the teacher's part recorded or replayed."""
        keys = [sample_key(sample) for sample in data_samples]
        self.distiller.set_deliveries_override(False)
        self._teacher_records(batch_inputs, data_samples, keys)
        self.distiller.set_deliveries_override(True)
        losses = dict()
        if self.calculate_student_loss:
            with self.distiller.student_recorders, self.distiller.deliveries:
                student_losses = self.student(
                    batch_inputs, data_samples, mode='loss')
            losses.update(add_prefix(student_losses, 'student'))
        else:
            with self.distiller.student_recorders, self.distiller.deliveries:
                if self.student_trainable:
                    self.student(batch_inputs, data_samples, mode='loss')
                else:
                    with torch.no_grad():
                        self.student(batch_inputs, data_samples, mode='loss')
        if not self.distillation_stopped:
            losses.update(add_prefix(
                self.distiller.compute_distill_losses(), 'distill'))
        return losses


@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Start, write per epoch and close a ``CachedTeacherDistill``'s cache.

    Before training: checks the cache against the run (dataset length,
    epochs, what it was recorded for) and, to record, the free disk space,
    then takes the recording lock. After each epoch: every process writes its
    samples, rank 0 enters the epoch in the manifest. Runs before
    ``CheckpointHook`` (priority NORMAL), so a checkpoint of epoch N means
    the cache holds epochs up to N.
    """

    priority = 'NORMAL'

    @staticmethod
    def _model(runner) -> CachedTeacherDistill:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, CachedTeacherDistill):
            raise TeacherCacheError(
                'TeacherCacheHook needs model.type=CachedTeacherDistill '
                '(set by teacher_cache.dir or tools/train.py '
                '--teacher-cache).')
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        model.teacher_cache.start(runner, list(model._recorders))

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        model.teacher_cache.finish_epoch(runner.epoch, list(model._recorders))

    def after_train(self, runner) -> None:
        self._model(runner).teacher_cache.finish()
