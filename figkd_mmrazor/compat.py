"""Upstream faults of today's stack, absorbed in one place.

Each fault is one small function; :func:`apply` runs the ones that are safe to
run at import time and is called first thing by ``figkd_mmrazor/__init__``.
Nothing here edits installed packages: it uses the extension points the
upstream libraries offer (``sys.modules``, ``torch.serialization``'s safe
globals, mmengine's ``CheckpointLoader`` schemes and ``model_wrapper_cfg``).

1. MMRazor 1.0.0's quantization structures call torch APIs removed after
   torch 1.13, and ``mmrazor.structures`` imports them eagerly, so
   ``import mmrazor.models`` fails on torch >= 2.1. A stand-in module takes
   their place; distillation is untouched and any use of quantization raises
   :class:`QuantizationUnavailableError`.
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
import sys
import types

import torch

_QUANT_MODULE = 'mmrazor.structures.quantization'


class QuantizationUnavailableError(RuntimeError):
    """MMRazor quantization was used where its torch APIs do not exist."""


def _quantization_error(reason: str) -> QuantizationUnavailableError:
    return QuantizationUnavailableError(
        'MMRazor 1.0.0 quantization needs the torch.ao.quantization APIs of '
        f'torch <= 1.13, but torch {torch.__version__} is installed, so '
        f'{_QUANT_MODULE} could not be imported ({reason}). figkd_mmrazor '
        'keeps MMRazor distillation working; for MMRazor quantization use a '
        'separate environment with torch 1.13.')


class _UnavailableMeta(type):
    # Covers class-level uses such as ``BackendConfigs['native']``.
    def __getitem__(cls, key):
        raise _quantization_error(cls._reason)

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        raise _quantization_error(cls._reason)


def _make_quantization_stand_in(reason: str) -> types.ModuleType:
    """A module whose every public name raises on use, never on import."""
    module = types.ModuleType(_QUANT_MODULE)
    module.__doc__ = ('Stand-in: MMRazor quantization is unavailable '
                      f'({reason}).')
    module.__all__ = []  # ``from .quantization import *`` imports nothing
    module.__path__ = []  # a package, so submodule imports fail cleanly

    def init(self, *args, **kwargs):
        raise _quantization_error(reason)

    def module_getattr(name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _UnavailableMeta(name, (), {
            '_reason': reason, '__init__': init})

    module.__getattr__ = module_getattr
    return module


def patch_mmrazor_quantization() -> None:
    """Make ``import mmrazor.models`` work when its quantization cannot."""
    if 'mmrazor.structures' in sys.modules:
        return  # imported already, by a working mmrazor or by an earlier call
    try:
        import mmrazor.structures  # noqa: F401
        return
    except ImportError as err:
        reason = f'{type(err).__name__}: {err}'
    # Drop what the failed import left behind, then retry with the stand-in.
    for name in list(sys.modules):
        if name == 'mmrazor.structures' or name.startswith(
                'mmrazor.structures.'):
            del sys.modules[name]
    sys.modules[_QUANT_MODULE] = _make_quantization_stand_in(reason)
    import mmrazor.structures  # noqa: F401,F811


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
