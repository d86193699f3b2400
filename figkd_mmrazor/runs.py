"""Runs and their work dirs: nothing a user had is lost by a start, a kill or
a rerun, and a resumed run is the run it claims to continue.

``tools/train.py`` calls these before the Runner exists:

* :func:`lock_work_dir` - one run per work dir, for the run's lifetime;
* :func:`check_fresh_start` / :func:`set_aside` - a run without ``--resume``
  never overwrites an earlier run's checkpoints;
* :func:`check_resume` - the config of a resumed run matches the one saved in
  its checkpoint (model, losses, data, schedule);
* :func:`add_run_guards` - atomic checkpoints and a stop at a non-finite loss
  (hooks in :mod:`figkd_mmrazor.hooks`);
* :func:`end_distributed` - the process group is torn down at exit.

Each refusal names what to do; docs/errors.md, section "Runs and work dirs",
lists them with their tests.
"""
import ast
import fcntl
import logging
import os
import os.path as osp
import shutil
import socket
import sys
import time
from typing import List

import torch
from mmengine.logging import print_log

from .guides import guide

LOCK_FILE = '.run.lock'
PREVIOUS_RUNS = 'previous_runs'
# Parts of a config that decide what a resumed run computes. A change to any
# other part (logging, validation, workers, hooks) is allowed.
RESUME_SECTIONS = ('model', 'data_preprocessor', 'train_dataloader',
                   'optim_wrapper', 'param_scheduler', 'train_cfg',
                   'auto_scale_lr', 'randomness')
# Keys inside those sections that do not change the numbers.
RESUME_FREE_KEYS = ('train_dataloader.num_workers',
                    'train_dataloader.persistent_workers',
                    'train_dataloader.pin_memory',
                    'train_cfg.val_interval', 'train_cfg.val_begin',
                    # The teacher's weights are in the checkpoint; a teacher
                    # cache records or replays the same teacher outputs.
                    'model.teacher_ckpt', 'model.teacher_cache')
DOC = guide('errors.md', 'Runs and work dirs')


class WorkDirError(RuntimeError):
    """A work dir is in use, or holds another run's checkpoints."""


class ResumeMismatchError(ValueError):
    """The resumed run's config differs from the checkpoint's."""


def launch_rank() -> int:
    """The global rank given by the launcher, before any process group."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(partial: str, path: str) -> None:
    """Flush ``partial`` to disk and rename it to ``path`` in one step."""
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, path)
    _fsync_dir(osp.dirname(osp.abspath(path)))


def atomic_write(path, write) -> None:
    """Write a file that is either the old one or the new, whole one.

    ``write(file)`` fills a temporary name in the same folder, which is
    flushed to disk and renamed into place; an error mid-write leaves
    ``path`` as it was and no temporary file, a kill leaves ``path`` as it
    was and a ``.NAME.partial`` (see :func:`remove_partial_files`).
    """
    path = os.fspath(path)
    partial = partial_name(path)
    try:
        with open(partial, 'wb') as f:
            write(f)
        replace_durably(partial, path)
    except BaseException:
        if osp.exists(partial):
            os.remove(partial)
        raise


def atomic_save(obj, path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def partial_name(path: str) -> str:
    """Where a write to ``path`` goes until it is complete."""
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}.partial')


def remove_partial_files(folder: str) -> None:
    """Delete what a killed write left behind (``.NAME.partial``)."""
    if osp.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith('.') and name.endswith('.partial'):
                os.remove(osp.join(folder, name))


def lock_work_dir(work_dir: str):
    """Hold the work dir for this process's lifetime, or refuse.

    Returns the open lock file: the lock lasts until it is closed or the
    process ends, however it ends (the kernel releases ``flock`` locks).
    """
    os.makedirs(work_dir, exist_ok=True)
    lock = open(osp.join(work_dir, LOCK_FILE), 'a+')
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or 'another process'
        lock.close()
        raise WorkDirError(
            f'Work dir {work_dir} is in use by a running job ({holder}). '
            'Two runs in one work dir would overwrite each other\'s '
            'checkpoints and logs. Wait for it to end, or give this run '
            f'another --work-dir. See {DOC}.') from None
    lock.seek(0)
    lock.truncate()
    lock.write(f'pid {os.getpid()} on {socket.gethostname()} since '
               f'{time.strftime("%Y-%m-%d %H:%M:%S")}: '
               f'{" ".join(sys.argv)}\n')
    lock.flush()
    return lock


def checkpoints_in(work_dir: str) -> list:
    """Names of the checkpoints (``*.pth``, ``last_checkpoint``) in it."""
    if not osp.isdir(work_dir):
        return []
    return sorted(name for name in os.listdir(work_dir)
                  if name.endswith('.pth') or name == 'last_checkpoint')


def check_fresh_start(work_dir: str) -> None:
    """Refuse to train from scratch over an earlier run's checkpoints."""
    found = checkpoints_in(work_dir)
    if found:
        shown = ', '.join(found[:4]) + (', ...' if len(found) > 4 else '')
        raise WorkDirError(
            f'Work dir {work_dir} already holds checkpoints of an earlier '
            f'run ({shown}); nothing was changed. To continue that run, add '
            '--resume. To keep it and train elsewhere, pass another '
            '--work-dir. To train from scratch here, add --start-over: it '
            f'moves the earlier run into {work_dir}/{PREVIOUS_RUNS}/<time>/ '
            f'and deletes nothing. See {DOC}.')


def set_aside_files(paths, root: str) -> str:
    """Move ``paths`` into a new folder ``root/<time>/``; returns it."""
    target = osp.join(root, time.strftime('%Y%m%d_%H%M%S'))
    suffix = 0
    while osp.exists(target + (f'_{suffix}' if suffix else '')):
        suffix += 1
    target += f'_{suffix}' if suffix else ''
    os.makedirs(target)
    for path in paths:
        shutil.move(path, osp.join(target, osp.basename(path)))
    return target


def set_aside(work_dir: str) -> str:
    """Move everything in the work dir into ``previous_runs/<time>/``.

    Returns the new folder (``''`` when there was nothing to move).
    """
    names = [name for name in os.listdir(work_dir)
             if name not in (LOCK_FILE, PREVIOUS_RUNS)] if osp.isdir(
                 work_dir) else []
    if not names:
        return ''
    return set_aside_files([osp.join(work_dir, name) for name in names],
                           osp.join(work_dir, PREVIOUS_RUNS))


def checkpoint_to_resume(work_dir: str, resume: str):
    """The file ``--resume`` would load (``resume='auto'``: the latest)."""
    if resume != 'auto':
        if not osp.isfile(resume):
            raise FileNotFoundError(
                f'--resume {resume}: no such checkpoint. Give the path of a '
                'checkpoint of this run, or --resume alone for the latest '
                'one in the work dir.')
        return resume
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None  # mmengine then trains from scratch, and says so
    with open(pointer) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{pointer} names {path}, which does not exist (was the work dir '
            'moved or its checkpoints deleted?). Resume from a checkpoint '
            'that exists: --resume PATH.')
    return path


def _literal(node):
    """Value of a config expression made of literals and ``dict(...)``."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(item) for item in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v)
                for k, v in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args and all(
                kw.arg is not None for kw in node.keywords)):
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    if isinstance(node, ast.Name) and node.id in ('inf', 'nan'):
        return float(node.id)
    raise ValueError(f'line {node.lineno}: {ast.unparse(node)[:80]}')


def saved_config(text: str) -> dict:
    """Read the config text a checkpoint holds, without running it.

    mmengine saves ``cfg.pretty_text``: assignments of literals and
    ``dict(...)``. Anything else is refused rather than executed, since a
    checkpoint's text is not trusted code.
    """
    cfg = {}
    for statement in ast.parse(text).body:
        if not (isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            raise ValueError(
                f'line {statement.lineno}: {ast.unparse(statement)[:80]}')
        cfg[statement.targets[0].id] = _literal(statement.value)
    return cfg


MISSING = '<not set>'


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def nested_differences(old, new, key: str = '') -> List[tuple]:
    """``(key, old, new)`` for each place where two nested configs differ.

    Keys are written as ``--cfg-options`` takes them (``a.b.1.c``); a key
    that only one side has is ``MISSING`` on the other. Lists of the same
    length that hold dicts or lists are compared item by item, other values
    as a whole.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for name in sorted(old.keys() | new.keys(), key=str):
            found += nested_differences(
                old.get(name, MISSING), new.get(name, MISSING),
                f'{key}.{name}' if key else str(name))
        return found
    if (isinstance(old, list) and isinstance(new, list)
            and len(old) == len(new)
            and any(isinstance(item, (dict, list)) for item in old + new)):
        found = []
        for index, (a, b) in enumerate(zip(old, new)):
            found += nested_differences(a, b, f'{key}.{index}')
        return found
    return [(key, old, new)] if old != new else []


def config_differences(saved: dict, current: dict) -> list:
    """``(key, saved value, current value)`` where the runs would differ."""
    differences = []
    for section in RESUME_SECTIONS:
        differences += [
            found for found in nested_differences(
                _plain(saved.get(section, MISSING)),
                _plain(current.get(section, MISSING)), section)
            if not found[0].startswith(RESUME_FREE_KEYS)]
    return differences


def _short(value) -> str:
    text = repr(value) if value is not MISSING else MISSING
    return text if len(text) <= 70 else text[:67] + '...'


def check_resume(cfg, checkpoint: str, allow_changes: bool = False) -> list:
    """Refuse to resume ``checkpoint`` with a config that computes other
    things than the one it was trained with; returns the differences.

    ``train_cfg.max_epochs`` (and ``max_iters``) may change on their own:
    mmengine restores the saved scheduler, which is the scheduler the
    unchanged ``param_scheduler`` builds, so the extra epochs follow the
    config's schedule. A changed ``param_scheduler`` would not take effect
    (the saved scheduler state is restored), so it is refused like a changed
    model, loss or dataset, unless ``allow_changes``.
    """
    from mmengine.config import Config
    from mmengine.runner import CheckpointLoader
    meta = CheckpointLoader.load_checkpoint(
        checkpoint, map_location='cpu').get('meta', {})
    if 'config' in meta:
        # mmengine's resume would execute this text as a Python config.
        raise ResumeMismatchError(
            f'Refusing to resume {checkpoint}: its meta holds a "config" '
            'entry, which mmengine would run as Python code. mmengine itself '
            'never writes it; re-save the checkpoint without it.')
    if 'cfg' not in meta:
        return []  # not written by mmengine's Runner: nothing to compare
    try:
        saved = saved_config(meta['cfg'])
    except (SyntaxError, ValueError) as err:
        raise ResumeMismatchError(
            f'The config saved in {checkpoint} is not plain data ({err}); it '
            'is not run. Resume only checkpoints written by this run.'
        ) from None
    current = Config(cfg.to_dict()).to_dict()  # resolves ConfigDicts
    differences = config_differences(saved, current)
    changed = [d for d in differences
               if not d[0].startswith(('train_cfg.max_epochs',
                                       'train_cfg.max_iters'))]
    if changed and not allow_changes:
        listed = '\n'.join(f'  {key}: {_short(old)} -> {_short(new)}'
                           for key, old, new in changed[:12])
        more = (f'\n  ... and {len(changed) - 12} more'
                if len(changed) > 12 else '')
        raise ResumeMismatchError(
            f'Refusing to resume {checkpoint} with a changed config '
            f'(checkpoint -> now):\n{listed}{more}\n'
            'A resumed run must compute what the interrupted one did. Resume '
            'with the config the run started with; or start a new run '
            'from these weights with load_from=CHECKPOINT (--cfg-options) '
            'in another --work-dir; or, if you mean it, add '
            '--resume-with-changes (the saved optimizer and scheduler '
            f'states are still restored as saved). See {DOC}.')
    return differences


def add_run_guards(cfg) -> None:
    """Use the atomic checkpoint hook and stop at a non-finite loss."""
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') == 'CheckpointHook':
        checkpoint['type'] = 'AtomicCheckpointHook'
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(hook.get('type') == 'NonFiniteLossHook' for hook in hooks):
        hooks.append(dict(type='NonFiniteLossHook'))
    cfg.custom_hooks = hooks


def prepare_work_dir(cfg, resume=None, start_over=False,
                     allow_changes=False):
    """All start-up checks of the work dir, on the launcher's rank 0.

    Returns the held lock (keep it referenced for the run's lifetime), or
    None on other ranks, whose launcher ends them if rank 0 refuses.
    """
    if launch_rank() != 0:
        return None
    work_dir = cfg.work_dir
    lock = lock_work_dir(work_dir)
    remove_partial_files(work_dir)
    if start_over:
        moved = set_aside(work_dir)
        if moved:
            print_log(f'--start-over: the earlier run is now in {moved}',
                      logger='current', level=logging.WARNING)
    elif resume is None:
        check_fresh_start(work_dir)
    else:
        path = checkpoint_to_resume(work_dir, resume)
        if path is None and checkpoints_in(work_dir):
            raise WorkDirError(
                f'--resume: {work_dir} holds checkpoints '
                f'({", ".join(checkpoints_in(work_dir)[:4])}) but no '
                'last_checkpoint naming the latest; mmengine would train '
                'from scratch over them. Give the one to resume: '
                f'--resume PATH. See {DOC}.')
        if path is not None:
            for key, old, new in check_resume(cfg, path, allow_changes):
                print_log(f'Resuming with {key}: {_short(old)} -> '
                          f'{_short(new)}', logger='current',
                          level=logging.WARNING)
    return lock


def end_distributed() -> None:
    """Tear the process group down, so that no rank aborts at exit."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_finished_distributed_run() -> None:
    """End a finished multi-process run here, past the interpreter's teardown.

    Even with the process group destroyed, objects still alive at exit (the
    DDP reducer, the store) can be destructed with a gloo thread still
    joinable, and one rank then aborts (SIGABRT, "terminate called without
    an active exception") although its run finished, so the launcher reports
    a failure. Everything of the run is on disk by now (checkpoints, logs,
    scalars), so a finished run flushes the logs and exits without that
    teardown. Single-process runs exit normally.
    """
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return
    import logging
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
