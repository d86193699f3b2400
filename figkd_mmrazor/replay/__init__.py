"""Teacher replay: record a frozen teacher's logits once, replay them in
every later run, and verify what is replayed.

A study of distillation recipes trains many students from one frozen teacher
on the same data; the teacher's answers are the same in every run. The first
run (recording) writes what the teacher recorders capture for every
(epoch, sample) into a folder; every later run (replaying) reads them back
into the same recorders and skips the teacher's forward pass, so KD, DKD,
FiGKD and any other MMRazor logit loss run unchanged.

Turn it on with one setting::

    teacher_cache = dict(dir='work_dirs/teacher_cache/cub_r50_r18',
                         dtype='float32', data_seed=0)

or ``tools/train.py CONFIG --teacher-cache DIR``.

One owner per concept:

* :mod:`.keyed_views` - a sample's random view as a function of
  (data seed, epoch, index) only, so the teacher sees the same view in every
  run whatever the model seed, batch size, order, workers or processes;
* :mod:`.fingerprint` - what a cache is for (teacher, weights, pipeline,
  data), and which configs can be replayed at all;
* :mod:`.store` - the folder: manifest, lock, checksummed shards;
* :mod:`.distiller` - the config it turns on, ``CachedTeacherDistill`` and
  ``TeacherCacheHook``.
"""
from .distiller import (CachedTeacherDistill, TeacherCache, TeacherCacheHook,
                        apply_to_config, use_teacher_cache)
from .fingerprint import (SETTINGS, NotReplayableError, TeacherCacheError,
                          check_replayable, settings_of)
from .keyed_views import KeyedAugmentDataset, KeyedSampler, sample_key
from .store import LOCK, MANIFEST, cache_bytes, decide

__all__ = [
    'CachedTeacherDistill', 'TeacherCache', 'TeacherCacheHook',
    'apply_to_config', 'use_teacher_cache', 'SETTINGS', 'NotReplayableError',
    'TeacherCacheError', 'check_replayable', 'settings_of',
    'KeyedAugmentDataset', 'KeyedSampler', 'sample_key', 'LOCK', 'MANIFEST',
    'cache_bytes', 'decide'
]
