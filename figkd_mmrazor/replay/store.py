"""The cache folder: its manifest, its recording lock and its shards, each
file checked against the manifest before its answers are used.

Layout (no pickle anywhere)::

    manifest.json              the fingerprint, and per epoch each shard's
                               bytes, sha256, rank and sample count
    recording.lock             while a recording run is alive (host, pid)
    epoch_0003/rank0-of-2.npz  per process and epoch: ``epoch``, ``rank``
                               and ``world`` (scalars), ``index`` (int64
                               [n]) and one [n, num_classes] array per
                               teacher recorder

Every file is written to a temporary name and renamed into place; each
process writes only its own samples; only rank 0 writes the manifest, and an
epoch enters it once every sample of it is on disk and checksummed. A
replaying run checks the sizes and checksums of every shard it will read
before its first step, and each shard's bytes and header again when it reads
it, against the manifest it read at start: a shard swapped, truncated,
flipped or replaced underneath the run stops it, naming the file.

Size (:func:`cache_bytes`): per sample, epoch and class, 4 bytes (float32)
or 2 bytes (``dtype='float16'``) per teacher recorder, plus 8 bytes per
sample and epoch for its index. CUB-200-2011 (5,994 training images, 200
classes) over 100 epochs: 5994 x 100 x (200 x 4 + 8) bytes = 484 MB in
float32, 245 MB in float16.
"""
import datetime
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import socket
import zipfile
from typing import Dict, List, Optional

import numpy as np

from ..runs import atomic_write
from .fingerprint import DOC, DTYPES, TeacherCacheError, check_same

FORMAT = 'figkd_mmrazor.teacher_cache/2'
MANIFEST = 'manifest.json'
LOCK = 'recording.lock'
RECORD_ANEW = ('Record the cache anew into another folder '
               f'(teacher_cache.dir or --teacher-cache). See {DOC}.')


def cache_bytes(num_samples: int, num_classes: int, epochs: int,
                dtype: str = 'float32', num_recorders: int = 1) -> int:
    """Bytes of the shards of a cache (the manifest is a few kB)."""
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


# The manifest ---------------------------------------------------------------

def read_manifest(cache_dir: str) -> Optional[dict]:
    """The cache's manifest, or None where there is none."""
    path = osp.join(cache_dir, MANIFEST)
    try:
        with open(path) as file:
            manifest = json.load(file)
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise TeacherCacheError(
            f'{path} is not readable JSON ({err}): the manifest of this '
            f'teacher cache was damaged. {RECORD_ANEW}') from None
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        found = manifest.get('format') if isinstance(manifest, dict) else None
        raise TeacherCacheError(
            f'{path} is not a teacher cache manifest of this version '
            f'(format {found!r}, expected {FORMAT!r}). {RECORD_ANEW}')
    return manifest


def write_manifest(cache_dir: str, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write(osp.join(cache_dir, MANIFEST), lambda f: f.write(text))


def new_manifest(fingerprint: dict, num_samples: int, epochs: int,
                 work_dir: str, world: int, manifest=None) -> dict:
    """The manifest a recording run writes first (continuing ``manifest``
    when it resumes a recording)."""
    manifest = manifest or dict(format=FORMAT, fingerprint=fingerprint,
                                dataset_length=num_samples, epochs={})
    manifest.update(epochs_planned=epochs, recorded_by=dict(
        host=socket.gethostname(), world_size=world,
        work_dir=osp.abspath(work_dir),
        date=datetime.date.today().isoformat()))
    return manifest


def epochs_in(manifest: Optional[dict]) -> List[int]:
    return sorted(int(e) for e in (manifest or {}).get('epochs', {}))


def ranges(epochs) -> str:
    """``0-3, 5`` for the epochs 0, 1, 2, 3, 5."""
    parts = []
    for e in sorted(epochs):
        if parts and e == parts[-1][1] + 1:
            parts[-1][1] = e
        else:
            parts.append([e, e])
    return ', '.join(str(a) if a == b else f'{a}-{b}' for a, b in parts) \
        or 'none'


# The recording lock -----------------------------------------------------------

def read_lock(cache_dir: str) -> Optional[dict]:
    try:
        with open(osp.join(cache_dir, LOCK)) as file:
            return json.load(file)
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # being written this instant: held


def lock_is_live(lock: Optional[dict]) -> bool:
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


def lock_text(cache_dir: str, lock: dict) -> str:
    return (f'{cache_dir} is being recorded by process {lock.get("pid")} on '
            f'{lock.get("host")} (work dir {lock.get("work_dir")}, started '
            f'{lock.get("started")}). Wait until it has finished; if that '
            f'run is dead, resume it (tools/train.py ... --resume) or delete '
            f'{osp.join(cache_dir, LOCK)}.')


def take_lock(cache_dir: str, work_dir: str, replace: bool) -> None:
    """Create the recording lock; exclusive, so two runs cannot both own it.
    ``replace``: the lock there was judged stale and is removed first."""
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
        raise TeacherCacheError(lock_text(cache_dir, read_lock(cache_dir)))
    with os.fdopen(fd, 'w') as file:
        file.write(text)


# Record or replay -------------------------------------------------------------

def decide(cache_dir: str, wanted: dict, epochs_needed: int, resume: bool):
    """``(mode, manifest)``: ``'record'`` into a folder with nothing
    recorded (or to continue an interrupted recording that this run
    resumes), ``'replay'`` from a cache for ``wanted`` that holds every
    epoch; anything else is refused, saying what to change."""
    manifest = read_manifest(cache_dir)
    recorded = epochs_in(manifest)
    lock = read_lock(cache_dir)
    if manifest is None or (not recorded and not lock_is_live(lock)):
        return 'record', manifest  # nothing recorded that could be lost
    check_same(manifest['fingerprint'], wanted, cache_dir)
    missing = sorted(set(range(epochs_needed)) - set(recorded))
    if not missing:
        return 'replay', manifest
    if lock_is_live(lock):
        raise TeacherCacheError(lock_text(cache_dir, lock))
    if not resume:
        work_dir = manifest.get('recorded_by', {}).get('work_dir')
        raise TeacherCacheError(
            f'The teacher cache in {cache_dir} is incomplete: it holds epochs '
            f'{ranges(recorded)}, this config trains epochs '
            f'0-{epochs_needed - 1} (missing {ranges(missing)}). If its '
            'recording run was interrupted, resume that run (tools/train.py '
            f'CONFIG --teacher-cache {cache_dir} --work-dir {work_dir} '
            '--resume); otherwise record into another folder.')
    return 'record', manifest


# Shards -----------------------------------------------------------------------

def shard_name(epoch: int, rank: int, world: int) -> str:
    return f'epoch_{epoch:04d}/rank{rank}-of-{world}.npz'


def write_shard(cache_dir: str, epoch: int, rank: int, world: int,
                index: np.ndarray, arrays: Dict[str, np.ndarray]) -> None:
    """One process's samples of one epoch, with their own address."""
    path = osp.join(cache_dir, shard_name(epoch, rank, world))
    os.makedirs(osp.dirname(path), exist_ok=True)
    arrays = dict(arrays, index=index, epoch=np.int64(epoch),
                  rank=np.int64(rank), world=np.int64(world))
    atomic_write(path, lambda file: np.savez(file, **arrays))


def _damaged(path: str, cache_dir: str, epoch: int, why: str):
    return TeacherCacheError(
        f'{path} cannot serve epoch {epoch} of the teacher cache '
        f'{cache_dir}: {why}. The cache was damaged or changed after it was '
        'recorded (or while this run replays it); nothing was trained on '
        f'this file. {RECORD_ANEW}')


def _open_shard(path: str, cache_dir: str, epoch: int,
                entry: Optional[dict] = None,
                header_only: bool = False) -> Dict[str, np.ndarray]:
    """The arrays of a shard (``header_only``: its epoch, rank and world),
    its bytes checked against ``entry`` (the manifest's) and its header
    against its place."""
    try:
        with open(path, 'rb') as file:
            data = file.read()
    except FileNotFoundError:
        raise _damaged(path, cache_dir, epoch, 'the file is missing') \
            from None
    if entry is not None:
        if len(data) != entry['bytes']:
            raise _damaged(path, cache_dir, epoch, f'it has {len(data)} '
                           f'bytes, the manifest lists {entry["bytes"]}')
        if hashlib.sha256(data).hexdigest() != entry['sha256']:
            raise _damaged(path, cache_dir, epoch, 'its sha256 is not the '
                           "manifest's")
    header = ('epoch', 'rank', 'world')
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files
                      if name in header or not header_only}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise _damaged(path, cache_dir, epoch, f'not a readable .npz '
                       f'({type(err).__name__})') from None
    rank, world = (int(x) for x in osp.basename(path)[4:-4].split('-of-'))
    held = tuple(int(arrays.get(k, -1)) for k in header)
    if held != (epoch, rank, world):
        raise _damaged(path, cache_dir, epoch, f'it holds epoch {held[0]}, '
                       f'rank {held[1]} of {held[2]}')
    return arrays


def commit_epoch(cache_dir: str, manifest: dict, epoch: int, world: int,
                 names, num_samples: int) -> None:
    """Rank 0, after every shard is written: check, checksum and enter the
    epoch in ``manifest`` (and on disk)."""
    files, seen = {}, np.zeros(num_samples, dtype=bool)
    for rank in range(world):
        rel = shard_name(epoch, rank, world)
        path = osp.join(cache_dir, rel)
        if not osp.isfile(path):
            raise TeacherCacheError(
                f'{rel} was written by another process but is not visible '
                f'in {cache_dir}: with several nodes, teacher_cache.dir must '
                'be on a filesystem they share.')
        arrays = _open_shard(path, cache_dir, epoch)
        if not set(names) <= set(arrays):
            raise TeacherCacheError(f'{rel} holds {sorted(arrays)}, '
                                    f'expected {sorted(names)}.')
        seen[arrays['index']] = True
        with open(path, 'rb') as file:
            digest = hashlib.file_digest(file, 'sha256').hexdigest()
        files[rel] = dict(bytes=os.path.getsize(path), sha256=digest,
                          samples=int(arrays['index'].size))
    if not seen.all():
        raise TeacherCacheError(
            f'Epoch {epoch} was not recorded for samples '
            f'{np.flatnonzero(~seen)[:10].tolist()}: the sampler must '
            'visit every sample once per epoch (DefaultSampler).')
    manifest['epochs'][str(epoch)] = dict(files=files)
    write_manifest(cache_dir, manifest)
    folder = osp.join(cache_dir, f'epoch_{epoch:04d}')
    for name in os.listdir(folder):  # shards of an interrupted run
        if f'epoch_{epoch:04d}/{name}' not in files:
            os.remove(osp.join(folder, name))


def verify(cache_dir: str, manifest: dict, epochs) -> None:
    """Before the first replayed step: every shard of ``epochs`` has the
    size and sha256 the manifest lists, and the epoch and rank of its
    place."""
    for epoch in epochs:
        for rel, entry in manifest['epochs'][str(epoch)]['files'].items():
            _open_shard(osp.join(cache_dir, rel), cache_dir, epoch, entry,
                        header_only=True)


def load_epoch(cache_dir: str, manifest: dict, epoch: int,
               names) -> Dict[str, np.ndarray]:
    """Every sample's records of ``epoch``, in sample order, each shard
    checked against ``manifest`` (the one the run verified at start)."""
    entry = manifest['epochs'].get(str(epoch))
    if entry is None:
        raise TeacherCacheError(
            f'Epoch {epoch} is not in the teacher cache {cache_dir} (it '
            f'holds epochs {ranges(epochs_in(manifest))}). Record the cache '
            'for as many epochs as this config trains.')
    size = manifest['dataset_length']
    out, seen = {}, np.zeros(size, dtype=bool)
    for rel, listed in entry['files'].items():
        path = osp.join(cache_dir, rel)
        arrays = _open_shard(path, cache_dir, epoch, listed)
        index = arrays['index']
        for name in names:
            rows = arrays[name]
            if name not in out:
                out[name] = np.zeros((size, ) + rows.shape[1:], rows.dtype)
            out[name][index] = rows
        seen[index] = True
    if not seen.all():
        raise TeacherCacheError(
            f'Samples {np.flatnonzero(~seen)[:10].tolist()} of epoch '
            f'{epoch} are not in the teacher cache {cache_dir}. '
            f'{RECORD_ANEW}')
    return out


def manifest_sha256(cache_dir: str) -> Optional[str]:
    """sha256 of the manifest file (None without one): what a run saw."""
    try:
        with open(osp.join(cache_dir, MANIFEST), 'rb') as file:
            return hashlib.file_digest(file, 'sha256').hexdigest()
    except FileNotFoundError:
        return None
