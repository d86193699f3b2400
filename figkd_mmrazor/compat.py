"""Upstream faults of today's stack, absorbed in one place.

Each fault is one small function; :func:`apply` runs the ones that are safe to
run at import time and is called first thing by ``figkd_mmrazor/__init__``.
Nothing here edits installed packages: it uses the extension points the
upstream libraries offer (``sys.modules``, ``torch.serialization``'s safe
globals, mmengine's ``CheckpointLoader`` schemes and ``model_wrapper_cfg``).

1. MMRazor 1.0.0's quantization structures call torch APIs removed after
   torch 1.13, and ``mmrazor.structures`` imports them eagerly, so
   ``import mmrazor.models`` fails on torch >= 2.1. The import hook
   (``figkd_mmrazor_hook``, started by the ``.pth`` file the package installs)
   puts a stand-in in their place only when their import fails; distillation
   is untouched and any use of quantization raises
   :class:`QuantizationUnavailableError`. :func:`apply` installs the hook too,
   for interpreters that skipped the ``.pth`` (``python -S``, a source tree on
   ``PYTHONPATH``).
2. torch >= 2.6 unpickles checkpoints with ``weights_only=True``. mmengine's
   checkpoints carry a few non-tensor types (message hub history, numpy
   scalars); exactly those are allow-listed, while mmengine loads a local
   checkpoint. Anything else, such as a pickled callable, is still refused,
   with an error that names the file.
3. mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``; on a
   machine without GPUs :func:`init_cpu_distributed` starts a gloo process
   group instead (mmengine then skips its own init) and DDP without device ids.
"""
import os
import pickle
import re

import torch

from figkd_mmrazor_hook import QuantizationUnavailableError  # noqa: F401


def patch_mmrazor_quantization() -> None:
    """Make ``import mmrazor.models`` work when its quantization cannot."""
    import figkd_mmrazor_hook
    figkd_mmrazor_hook.install()


def mmengine_checkpoint_types() -> list:
    """The non-tensor types that checkpoints saved by mmengine contain."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy.core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy >= 2 moved these
        from numpy._core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in np.sctypeDict.values()]
    # A HistoryBuffer pickles its statistics methods by reference, as
    # getattr(HistoryBuffer, 'min'). The weights-only unpickler still calls
    # only allow-listed callables, so getattr cannot reach anything else.
    return [HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar,
            getattr, *dict.fromkeys(dtype_classes)]


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint holds an object that ``weights_only`` loading refuses."""


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local-file loader, with errors that name the file.

    Registered for the empty prefix, i.e. every local path, replacing
    mmengine's own loader of the same behaviour.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename} does not exist. Check the path (for a '
            'teacher: `teacher_ckpt` in the config or --cfg-options '
            'model.teacher_ckpt=PATH).')
    try:
        with torch.serialization.safe_globals(mmengine_checkpoint_types()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        if 'Weights only load failed' not in str(err):
            raise _corrupted(filename, err) from err
        found = re.search(r'GLOBAL ([\w.]+)', str(err))
        what = found.group(1) if found else 'a non-tensor object'
        raise CheckpointRefusedError(
            f'Refusing to load checkpoint {filename}: it contains {what}, '
            'which is neither a tensor nor one of the types mmengine '
            'checkpoints hold, and unpickling it could run arbitrary code. '
            'If you made this file and trust it, re-save only its '
            'state_dict (tensors) and load that instead.') from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise _corrupted(filename, err) from err


def _corrupted(filename: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f'Checkpoint {filename} could not be read; it is truncated or '
        f'corrupted ({type(err).__name__}: {err}). Re-download or re-save '
        'it.')


def register_checkpoint_loader() -> None:
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)


def init_cpu_distributed(cfg, launcher: str) -> bool:
    """Start a gloo process group for ``--launcher pytorch`` without GPUs.

    mmengine's launcher would call ``torch.cuda.set_device`` and fail; with a
    process group already up, the Runner skips its own initialisation. DDP on
    CPU needs ``device_ids=None``, set through ``cfg.model_wrapper_cfg``.
    Returns whether it started the group. On GPUs nothing changes (NCCL).
    """
    import torch.distributed as dist
    if launcher != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True


def apply() -> None:
    """Run the import-time fixes; each is idempotent."""
    patch_mmrazor_quantization()
    register_checkpoint_loader()
