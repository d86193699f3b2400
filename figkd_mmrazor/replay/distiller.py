"""The run's side of a teacher cache: the config it turns on, the distiller
that records or replays, and the hook that starts and closes the cache.

Record or replay is decided once per run, by :func:`apply_to_config` on the
launcher's rank 0 before the Runner exists (so a cache that cannot serve the
config is refused in seconds), with the teacher and the data fingerprinted
once; the decision and the fingerprint are handed on in
``model.teacher_cache``. When training starts, :class:`TeacherCacheHook`
confirms on rank 0 that the folder is still the one that was decided on
(the manifest's sha256), checks every shard the run will read, and tells the
other processes.
"""
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmrazor.models import SingleTeacherDistill
from mmrazor.registry import MODELS

from ..config_facts import type_name
from ..runs import launch_rank
from . import store
from .fingerprint import (DTYPES, TeacherCacheError, check_replayable,
                          fingerprint, settings_of)
from .keyed_views import KeyedAugmentDataset, key_loader, sample_key


def use_teacher_cache(cfg, settings: dict):
    """Rewrite ``cfg`` (in place) to run with the cache of ``settings``:
    ``CachedTeacherDistill``, keyed augmentation with the cache's data seed
    and ``TeacherCacheHook``. Decides nothing. Returns ``cfg``."""
    check_replayable(cfg)
    cfg.teacher_cache = settings
    cfg.model.type = 'CachedTeacherDistill'
    cfg.model.teacher_cache = dict(dir=settings['dir'],
                                   dtype=settings['dtype'])
    key_loader(cfg.train_dataloader, settings['data_seed'],
               'teacher_cache.data_seed')
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(type_name(h) == 'TeacherCacheHook' for h in hooks):
        hooks.append(dict(type='TeacherCacheHook'))
    cfg.custom_hooks = hooks
    return cfg


def apply_to_config(cfg, cache_dir: Optional[str] = None):
    """Turn the teacher cache on in ``cfg`` (in place) where ``cache_dir``
    or ``cfg.teacher_cache.dir`` names a folder, and decide record or replay
    (launcher's rank 0). Returns ``cfg``."""
    settings = settings_of(cfg, cache_dir)
    if settings is None:
        return cfg
    settings['dir'] = osp.abspath(settings['dir'])
    decided = {}
    if launch_rank() == 0:  # refused here, the config is left as it was
        wanted = fingerprint(cfg, settings)
        mode, _ = store.decide(settings['dir'], wanted,
                               int(cfg.train_cfg.max_epochs),
                               bool(cfg.get('resume')))
        decided = dict(mode=mode, fingerprint=wanted,
                       manifest_sha256=store.manifest_sha256(settings['dir']))
    use_teacher_cache(cfg, settings)
    cfg.model.teacher_cache.update(decided)
    return cfg


def _on_rank0(fn):
    """``fn()`` on rank 0; every rank returns its result or raises the
    TeacherCacheError it raised."""
    rank, world = get_dist_info()
    answer = [None, None]
    if rank == 0:
        try:
            answer[0] = fn()
        except TeacherCacheError as err:
            answer[1] = str(err)
    if world > 1:
        broadcast_object_list(answer, src=0)
    if answer[1] is not None:
        raise TeacherCacheError(answer[1])
    return answer[0]


class TeacherCache:
    """One process's side of a cache folder: start, record, replay.

    Args:
        dir (str): The cache folder.
        dtype (str): ``'float32'`` or ``'float16'``.
        mode, fingerprint, manifest_sha256: What :func:`apply_to_config`
            decided and saw; without them, :meth:`start` decides.
    """

    def __init__(self, dir: str, dtype: str = 'float32',
                 mode: Optional[str] = None,
                 fingerprint: Optional[dict] = None,
                 manifest_sha256: Optional[str] = None) -> None:
        self.dir, self.dtype, self.mode = dir, dtype, mode
        self.fingerprint, self.seen = fingerprint, manifest_sha256
        self.manifest: Optional[dict] = None
        self.rows: Dict[str, list] = {}
        self.index: list = []
        self.loaded: Optional[tuple] = None  # (epoch, {name: array})
        self.owns_lock = False

    def start(self, runner, names) -> None:
        dataset = runner.train_dataloader.dataset
        if not isinstance(dataset, KeyedAugmentDataset):
            raise TeacherCacheError(
                'The training dataset is not a KeyedAugmentDataset: a cached '
                "teacher needs each sample's augmentation keyed by (epoch, "
                'index). Turn the cache on with teacher_cache.dir or '
                'tools/train.py --teacher-cache (they wrap it).')
        self.num_samples = len(dataset)
        self.mode = _on_rank0(lambda: self._start(runner, names))
        barrier()
        self.manifest = store.read_manifest(self.dir)
        print_log(f'Teacher cache: {self.mode} {self.dir}', logger='current')

    def _start(self, runner, names) -> str:
        needed, first = int(runner.cfg.train_cfg.max_epochs), runner.epoch
        if self.mode is None:  # not decided before the Runner existed
            self.fingerprint = fingerprint(runner.cfg, dict(
                dir=self.dir, dtype=self.dtype,
                data_seed=runner.train_dataloader.dataset.data_seed))
            self.mode, _ = store.decide(self.dir, self.fingerprint, needed,
                                        bool(runner.cfg.get('resume')))
        elif store.manifest_sha256(self.dir) != self.seen:
            raise TeacherCacheError(
                f'The teacher cache {self.dir} changed between the start of '
                'this run and its first step (another run records into it, '
                'or it was replaced). Start the run again.')
        manifest = store.read_manifest(self.dir)
        recorded = store.epochs_in(manifest)
        if self.mode == 'replay':
            store.verify(self.dir, manifest, range(first, needed))
            return 'replay'
        before = sorted(set(range(first)) - set(recorded))
        if before:
            raise TeacherCacheError(
                f'This run resumes at epoch {first}, but the teacher cache '
                f'in {self.dir} lacks epochs {store.ranges(before)} it '
                'already trained: the checkpoint is not from the run that '
                'recorded this cache. Record into a new folder from the '
                'start.')
        store.check_disk_space(self.dir, store.cache_bytes(
            self.num_samples, self.fingerprint['num_classes'] or 0,
            needed - first, self.dtype, len(names)))
        self.begin_recording(needed, runner.cfg.work_dir,
                             manifest if recorded else None)
        return 'record'

    def begin_recording(self, epochs: int, work_dir: str,
                        manifest: Optional[dict] = None) -> None:
        """Take the recording lock and write the manifest (rank 0)."""
        os.makedirs(self.dir, exist_ok=True)
        lock = store.read_lock(self.dir)
        store.take_lock(self.dir, work_dir, replace=lock is not None)
        self.owns_lock, self.mode = True, 'record'
        store.write_manifest(self.dir, store.new_manifest(
            self.fingerprint, self.num_samples, epochs, work_dir,
            get_dist_info()[1], manifest))

    def record(self, keys, live: Dict[str, torch.Tensor]) -> Dict:
        """Keep one batch; return the records as the cache holds them
        (rounded to its dtype), for the student to use in this run too."""
        self.index.append(np.array([i for _, i in keys], dtype=np.int64))
        rounded = {}
        for name, logits in live.items():
            if not (torch.is_tensor(logits) and logits.dim() == 2
                    and logits.shape[0] == len(keys)):
                raise TeacherCacheError(
                    f'Teacher recorder {name!r} recorded '
                    f'{getattr(logits, "shape", type(logits).__name__)}, '
                    'not one [batch, num_classes] logits tensor: point it '
                    "at the head's output (dict(type='Logits')) or drop "
                    'the teacher cache.')
            rows = logits.detach().to('cpu', torch.float32).numpy().astype(
                DTYPES[self.dtype])
            self.rows.setdefault(name, []).append(rows)
            rounded[name] = logits if self.dtype == 'float32' else \
                torch.from_numpy(rows).to(logits.device, logits.dtype)
        return rounded

    def finish_epoch(self, epoch: int, names) -> None:
        """Recording: every process writes its samples of ``epoch``, then
        rank 0 checks and enters the epoch in the manifest."""
        if self.mode != 'record':
            return
        rank, world = get_dist_info()
        index = np.concatenate(self.index) if self.index else np.zeros(
            0, np.int64)
        arrays = {name: np.concatenate(rows)
                  for name, rows in self.rows.items()}
        store.write_shard(self.dir, epoch, rank, world, index, arrays)
        self.rows, self.index = {}, []
        barrier()
        _on_rank0(lambda: store.commit_epoch(
            self.dir, store.read_manifest(self.dir), epoch, world, names,
            self.num_samples))

    def replay(self, keys, names, device) -> Dict[str, torch.Tensor]:
        """The recorded logits of the samples ``keys``, as a batch."""
        epoch = keys[0][0]
        if self.loaded is None or self.loaded[0] != epoch:
            self.loaded = (epoch, store.load_epoch(self.dir, self.manifest,
                                                   epoch, names))
        index = np.array([i for _, i in keys], dtype=np.int64)
        return {name: torch.from_numpy(rows[index]).to(device, torch.float32)
                for name, rows in self.loaded[1].items()}

    def finish(self) -> None:
        """Release the recording lock (a cache nobody records any more)."""
        if self.owns_lock:
            lock = osp.join(self.dir, store.LOCK)
            if osp.exists(lock):
                os.remove(lock)
            self.owns_lock = False


@MODELS.register_module()
class CachedTeacherDistill(SingleTeacherDistill):
    """MMRazor's ``SingleTeacherDistill`` with a recorded teacher.

    MMRazor's own ``loss`` runs unchanged; only the teacher's forward is
    taken over for the step: while recording, the frozen teacher runs and
    its recorders' outputs, rounded to the cache's dtype, are both used and
    kept; while replaying, the teacher does not run and its recorders are
    filled from the cache by each sample's ``(epoch, index)`` key.

    Args:
        teacher_cache (dict): ``dict(dir=..., dtype=...)`` and what
            :func:`apply_to_config` decided (see :class:`TeacherCache`).
        **kwargs: Those of ``SingleTeacherDistill``.
    """

    def __init__(self, *args, teacher_cache: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teacher_cache = TeacherCache(**teacher_cache)

    @property
    def cached_recorders(self):
        return self.distiller.teacher_recorders.recorders

    def loss(self, batch_inputs, data_samples=None):
        if self.teacher_cache.mode is None:
            raise TeacherCacheError(
                'CachedTeacherDistill trained without TeacherCacheHook: add '
                "dict(type='TeacherCacheHook') to custom_hooks (or turn the "
                'cache on with teacher_cache.dir / --teacher-cache).')
        keys = [sample_key(sample) for sample in data_samples]
        live_forward = self.teacher.forward

        def teacher_forward(inputs, samples=None, mode='tensor'):
            # Called by MMRazor's loss inside the teacher recorders' context.
            cache = self.teacher_cache
            if cache.mode == 'replay':
                records = cache.replay(keys, list(self.cached_recorders),
                                       inputs.device)
            else:
                live_forward(inputs, samples, mode=mode)
                records = cache.record(keys, {
                    name: recorder.data_buffer[-1] if len(
                        recorder.data_buffer) == 1 else recorder.data_buffer
                    for name, recorder in self.cached_recorders.items()})
            for name, recorder in self.cached_recorders.items():
                recorder.reset_data_buffer()
                recorder.data_buffer.append(records[name])

        # An instance attribute shadows the class's forward for this step.
        self.teacher.forward = teacher_forward
        try:
            return super().loss(batch_inputs, data_samples)
        finally:
            del self.teacher.forward


@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Start, write per epoch and close a ``CachedTeacherDistill``'s cache.

    Runs before ``CheckpointHook`` (priority NORMAL), so a checkpoint of
    epoch N means the cache holds epochs up to N.
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
        model.teacher_cache.start(runner, list(model.cached_recorders))

    def after_train_epoch(self, runner) -> None:
        model = self._model(runner)
        model.teacher_cache.finish_epoch(runner.epoch,
                                         list(model.cached_recorders))

    def after_train(self, runner) -> None:
        self._model(runner).teacher_cache.finish()
