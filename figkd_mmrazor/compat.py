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
2. mmengine unpickles checkpoints fetched by URL with ``weights_only=False``
   and, on torch >= 2.6, refuses the numpy and message-hub types of its own
   checkpoints at local paths: :func:`apply` registers the weights-only
   loaders of :mod:`figkd_mmrazor.checkpoints` for every scheme instead.
3. mmengine's ``pytorch`` and ``slurm`` launchers call
   ``torch.cuda.set_device``; on a machine without GPUs
   :func:`init_cpu_distributed` starts a gloo process
   group instead (mmengine then skips its own init) and DDP without device ids.
"""
import os

import torch

from figkd_mmrazor_hook import QuantizationUnavailableError  # noqa: F401


def patch_mmrazor_quantization() -> None:
    """Make ``import mmrazor.models`` work when its quantization cannot."""
    import figkd_mmrazor_hook
    figkd_mmrazor_hook.install()


def _torch_environment_from_slurm() -> None:
    """What mmengine's slurm launcher sets, without its CUDA calls."""
    import subprocess
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        hosts = subprocess.run(
            ['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']],
            capture_output=True, text=True, check=True).stdout.split()
        os.environ['MASTER_ADDR'] = hosts[0]


def init_cpu_distributed(cfg, launcher: str) -> bool:
    """Start a gloo process group for ``--launcher pytorch`` (or
    ``slurm``) without GPUs.

    mmengine's launcher would call ``torch.cuda.set_device`` and fail; with a
    process group already up, the Runner skips its own initialisation. DDP on
    CPU needs ``device_ids=None``, set through ``cfg.model_wrapper_cfg``.
    Returns whether it started the group. On GPUs nothing changes (NCCL).
    """
    import torch.distributed as dist
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        _torch_environment_from_slurm()
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
    from .checkpoints import register_loaders
    register_loaders()
