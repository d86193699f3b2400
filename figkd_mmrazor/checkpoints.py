"""What a checkpoint holds, and reading one without running its code.

One home for the facts about checkpoints: the key prefixes of an MMRazor
distillation model (``architecture.`` for the student, ``teacher.`` for the
teacher), the student's own mmpretrain checkpoint, the classifier weight, and
whether a checkpoint fits a model key by key and shape by shape.

Loading. ``torch.load`` unpickles, and a pickle can call any function. Every
checkpoint is therefore loaded with ``weights_only=True``, which admits
tensors and plain containers plus the few types mmengine's own checkpoints
hold (:func:`mmengine_checkpoint_types`). :func:`register_loaders` installs
the loaders below in mmengine's ``CheckpointLoader`` for every scheme a config
can name (a local path, ``http(s)://``, ``torchvision://``, ``modelzoo://``,
``open-mmlab://``, ``mmcls://``, ``s3://``, ``petrel://``), so ``load_from``,
``teacher_ckpt`` and ``init_cfg=dict(type='Pretrained', ...)`` all go
through them. mmengine itself fetches URLs with
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` is False.
"""
import io
import os
import pickle
import re
from typing import Dict, Tuple
from urllib.parse import urlparse

import torch

STUDENT_PREFIX = 'architecture.'
TEACHER_PREFIX = 'teacher.'
# mmengine's load_checkpoint(revise_keys=...) default: DataParallel's prefix.
MMENGINE_REVISE_KEYS = ((r'^module\.', ''), )
_SHOWN = 5  # keys listed per kind in a mismatch message


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint holds an object that ``weights_only`` loading refuses."""


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys or shapes do not fit the model it is meant for."""


# ----------------------------------------------------------------- loading
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


def _torch_load(source, map_location, name: str):
    """``torch.load(weights_only=True)`` of a path or buffer; errors name
    the checkpoint as ``name``. A checkpoint that holds anything but
    tensors and mmengine's types is refused before any of it is unpickled,
    by the list torch gives of its other globals."""
    with torch.serialization.safe_globals(mmengine_checkpoint_types()):
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                source)
        except (ValueError, RuntimeError, OSError):
            unsafe = []  # not a zip checkpoint: torch.load says what it is
        if hasattr(source, 'seek'):
            source.seek(0)
        if unsafe:
            raise CheckpointRefusedError(
                f'Refusing to load checkpoint {name}: it contains '
                f'{", ".join(sorted(unsafe))}, which is neither a tensor nor '
                'one of the types mmengine checkpoints hold, and unpickling '
                'it could run arbitrary code. If you made this file and '
                'trust it, re-save only its state_dict (tensors) and load '
                'that instead.')
        try:
            return torch.load(source, map_location=map_location,
                              weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError,
                OSError) as err:
            raise _corrupted(name, err) from err


def _corrupted(name: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f'Checkpoint {name} could not be read weights-only; it is truncated '
        'or corrupted, or an old-format file that holds objects other than '
        f'tensors ({type(err).__name__}: {err}). Re-download it, or re-save '
        'its state_dict with torch.save.')


def load_from_local(filename: str, map_location=None):
    """A local checkpoint file, weights only."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename} does not exist. Check the path (for a '
            'teacher: `teacher_ckpt` in the config or --cfg-options '
            'model.teacher_ckpt=PATH).')
    return _torch_load(filename, map_location, filename)


def hub_cache_path(url: str) -> str:
    """Where torch.hub keeps the download of ``url`` (``$TORCH_HOME``)."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints',
                        os.path.basename(urlparse(url).path))


def _fetch_and_load(url: str, map_location):
    cached = hub_cache_path(url)
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        # Downloads to a temporary name and renames: never a partial file.
        torch.hub.download_url_to_file(url, cached, progress=os.isatty(0))
    return _torch_load(cached, map_location, f'{url} (cached as {cached})')


def load_from_http(url: str, map_location=None):
    """A checkpoint by URL, through torch.hub's cache, weights only.

    In a distributed run rank 0 downloads first and the others then read
    its file, as mmengine's own URL loader does.
    """
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = _fetch_and_load(url, map_location)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = _fetch_and_load(url, map_location)
    return checkpoint


def _mmengine_home() -> str:
    # The folder mmengine resolves 'open-mmlab://' names without a URL in.
    cache = os.getenv('XDG_CACHE_HOME', '~/.cache')
    return os.path.expanduser(
        os.getenv('MMENGINE_HOME', os.path.join(cache, 'mmengine')))


def load_from_model_zoo(filename: str, map_location=None):
    """``torchvision://``, ``modelzoo://``, ``open-mmlab://``,
    ``openmmlab://`` and ``mmcls://`` names, resolved with mmengine's tables
    and loaded weights only."""
    from mmengine.runner import checkpoint as tables
    scheme, name = filename.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        urls = tables.get_torchvision_models()
    elif scheme == 'mmcls':
        urls = tables.get_mmcls_models()
    else:
        urls = tables.get_external_models()
        name = tables.get_deprecated_model_names().get(name, name)
    if name not in urls:
        raise KeyError(f'{filename}: mmengine knows no model {name!r} under '
                       f'{scheme}://.')
    location = urls[name]
    if location.startswith(('http://', 'https://')):
        checkpoint = load_from_http(location, map_location)
    else:
        checkpoint = load_from_local(
            os.path.join(_mmengine_home(), location), map_location)
    if scheme == 'mmcls':
        # mmcls:// names stand for backbones: keep backbone.* unprefixed.
        backbone = strip_prefix(state_dict_of(checkpoint), 'backbone.')
        checkpoint = dict(state_dict=backbone)
    return checkpoint


def load_from_ceph(filename: str, map_location=None):
    """``s3://`` and ``petrel://`` files through mmengine's petrel backend,
    weights only."""
    from mmengine.fileio import get_file_backend
    backend = get_file_backend(filename, backend_args=dict(backend='petrel'))
    with io.BytesIO(backend.get(filename)) as buffer:
        return _torch_load(buffer, map_location, filename)


# (prefixes, loader) as mmengine's CheckpointLoader matches them: a regular
# expression at the start of the name; the empty prefix is every local path.
_LOADERS = (
    (('http://', 'https://'), load_from_http),
    (('torchvision://', 'modelzoo://', 'open-mmlab://', 'openmmlab://',
      'mmcls://'), load_from_model_zoo),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph),
    (('', ), load_from_local),
)


def register_loaders() -> None:
    """Make mmengine load every checkpoint through this module."""
    from mmengine.runner import CheckpointLoader
    for prefixes, loader in _LOADERS:
        CheckpointLoader.register_scheme(list(prefixes), loader, force=True)


def load_checkpoint(filename: str, map_location='cpu') -> dict:
    """A checkpoint by path or by any of the schemes above, weights only.

    Raises:
        CheckpointRefusedError: the file holds pickled objects other than
            tensors and mmengine's checkpoint types (the message names the
            file, or the URL and its cached file).
    """
    filename = str(filename)
    for prefixes, loader in _LOADERS:
        if any(re.match(p, filename) for p in prefixes):
            return loader(filename, map_location)


# ------------------------------------------------------- what they hold
def state_dict_of(checkpoint: dict) -> dict:
    """``checkpoint['state_dict']`` if present, else the checkpoint."""
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        return checkpoint['state_dict']
    return checkpoint


def strip_prefix(state_dict: dict, prefix: str) -> Dict[str, object]:
    """The entries under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items()
            if k.startswith(prefix)}


def split_distillation_state(state_dict: dict) -> Tuple[dict, dict]:
    """``(student, teacher)`` state dicts of an MMRazor distillation model.

    Raises:
        ValueError: if the keys are not those of a distillation model (both
            ``architecture.`` and ``teacher.`` keys).
    """
    student = strip_prefix(state_dict, STUDENT_PREFIX)
    teacher = strip_prefix(state_dict, TEACHER_PREFIX)
    if not student or not teacher:
        raise ValueError(
            'Not an MMRazor distillation checkpoint: expected keys starting '
            f'with {STUDENT_PREFIX!r} (the student) and {TEACHER_PREFIX!r} '
            f'(the teacher), found {_few(state_dict)}.')
    return student, teacher


def student_checkpoint(checkpoint: dict) -> dict:
    """An mmpretrain-style checkpoint (``meta``, ``state_dict``) of the
    student of a distillation checkpoint."""
    meta = {k: v for k, v in checkpoint.get('meta', {}).items()
            if k in ('epoch', 'iter', 'dataset_meta', 'seed', 'time',
                     'mmengine_version', 'experiment_name')}
    student, _ = split_distillation_state(state_dict_of(checkpoint))
    return dict(meta=meta, state_dict=student)


def classifier_weight(state_dict: dict) -> torch.Tensor:
    """The ``(num_classes, dim)`` weight of an mmpretrain classifier's head:
    the last 2-D ``head.*weight`` (``head.fc.weight``, the last layer of a
    ``StackedLinearClsHead``, ``head.layers.head.weight``, ...).

    Raises:
        ValueError: if there is none (e.g. a distillation state dict: split
            it first with :func:`split_distillation_state`).
    """
    found = [v for k, v in state_dict.items()
             if k.startswith('head.') and k.endswith('weight')
             and isinstance(v, torch.Tensor) and v.dim() == 2]
    if not found:
        raise ValueError(
            'No classifier weight (a 2-D head.*weight) in the state dict; '
            f'found {_few(state_dict)}.')
    return found[-1]


def _few(keys) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:_SHOWN])
    more = f' and {len(keys) - _SHOWN} more' if len(keys) > _SHOWN else ''
    return f'{shown}{more}' if keys else 'no keys'


# --------------------------------------------------------------- fitting
def _revised(state_dict: dict) -> dict:
    """The keys as mmengine's ``load_checkpoint`` loads them."""
    revised = dict(state_dict)
    for pattern, replacement in MMENGINE_REVISE_KEYS:
        revised = {re.sub(pattern, replacement, k): v
                   for k, v in revised.items()}
    return revised


def incompatible_keys(model: torch.nn.Module, state_dict: dict):
    """``(missing, unexpected, mis_shaped)`` of loading ``state_dict`` into
    ``model`` as mmengine does: ``module.`` stripped, a missing BN
    ``num_batches_tracked`` ignored, and the modules' load hooks run (they
    rename or resize the keys of older checkpoints, e.g. mmpretrain's Swin).

    ``mis_shaped`` holds ``(key, checkpoint shape, model shape)``; a value
    that is not a tensor at all has the checkpoint shape ``None``. ``model``
    is used up: its tensors are replaced by the checkpoint's.
    """
    state_dict = _revised(state_dict_of(state_dict))
    mis_shaped = []

    def take_out_misfits(module, state, prefix, *_):
        # Registered last, this pre-hook runs after the module's own (which
        # may rename or resize entries): what still misfits is here.
        own = dict(module.named_parameters(recurse=False))
        own.update(module.named_buffers(recurse=False))
        for name, tensor in own.items():
            key = prefix + name
            if key not in state or tensor is None:
                continue
            value = state[key]
            if not isinstance(value, torch.Tensor):
                mis_shaped.append((key, None, tuple(tensor.shape)))
            elif value.shape != tensor.shape:
                mis_shaped.append((key, tuple(value.shape),
                                   tuple(tensor.shape)))
            else:
                continue
            del state[key]

    handles = [module.register_load_state_dict_pre_hook(take_out_misfits)
               for module in model.modules()]
    try:
        # Assign rather than copy: the model is a throwaway.
        result = model.load_state_dict(state_dict, strict=False, assign=True)
    finally:
        for handle in handles:
            handle.remove()
    taken = {key for key, _, _ in mis_shaped}
    missing = [k for k in result.missing_keys
               if k not in taken and not k.endswith('num_batches_tracked')]
    return missing, list(result.unexpected_keys), mis_shaped


def check_state_dict_fits(model: torch.nn.Module, state_dict: dict,
                          what: str, model_name: str = 'the model') -> None:
    """Refuse a state dict that does not fit ``model`` exactly.

    Args:
        model: the model the state dict is meant for; it is used up (see
            :func:`incompatible_keys`).
        state_dict: the state dict (or whole checkpoint) to load.
        what: the checkpoint in words, e.g. ``'Teacher checkpoint x.pth'``.
        model_name: the model in words, e.g. ``'the teacher config'``.

    Raises:
        CheckpointMismatchError: listing a few missing, unexpected and
            mis-shaped keys, the likely cause and the fix.
    """
    found = _revised(state_dict_of(state_dict))
    expected = model.state_dict().keys()
    missing, unexpected, mis_shaped = incompatible_keys(model, state_dict)
    if not (missing or unexpected or mis_shaped):
        return
    lines = [f'{what} does not fit {model_name}: {len(missing)} missing, '
             f'{len(unexpected)} unexpected and {len(mis_shaped)} mis-shaped '
             'keys.']
    shapes = [f'{k} (checkpoint {"not a tensor" if a is None else a}, '
              f'model {b})' for k, a, b in mis_shaped]
    for kind, keys in (('missing', missing), ('unexpected', unexpected),
                       ('mis-shaped', shapes)):
        if keys:
            lines.append(f'  {kind}: {_few(keys)}')
    lines.append(_likely_cause(expected, found, missing, unexpected,
                               mis_shaped, what, model_name))
    raise CheckpointMismatchError('\n'.join(lines))


def _has_prefix(keys, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def _is_head(key: str) -> bool:
    return key.startswith(('head.', f'{STUDENT_PREFIX}head.',
                           f'{TEACHER_PREFIX}head.'))


def _likely_cause(expected, found, missing, unexpected, mis_shaped, what,
                  model_name) -> str:
    distillation = (STUDENT_PREFIX, TEACHER_PREFIX)
    model_distills = all(_has_prefix(expected, p) for p in distillation)
    ckpt_distills = all(_has_prefix(found, p) for p in distillation)
    if ckpt_distills and not model_distills:
        return (
            'Likely cause: it is a whole MMRazor distillation checkpoint '
            f'({STUDENT_PREFIX!r} keys: the student, {TEACHER_PREFIX!r} '
            'keys: the teacher). Fix: take the part you need. The student, '
            'as an mmpretrain checkpoint: `python tools/convert_to_student.py'
            ' CHECKPOINT student.pth` (figkd_mmrazor). The teacher: load it '
            "with the prefix 'teacher.', e.g. init_cfg=dict(type="
            "'Pretrained', checkpoint=CHECKPOINT, prefix='teacher.') on the "
            'model (with model.teacher_ckpt=None for a teacher). Or use the '
            'distillation config the checkpoint was saved with.')
    if model_distills and not ckpt_distills:
        return (
            'Likely cause: the checkpoint holds a single classifier (no '
            f'{STUDENT_PREFIX!r}/{TEACHER_PREFIX!r} keys), e.g. a student '
            'checkpoint written by StudentCheckpointHook, while the config '
            'is a distillation config. Fix: use it with the student config '
            '(student.py beside it, written by StudentCheckpointHook or by '
            '`tools/convert_to_student.py --config`), or use the '
            'distillation checkpoint (epoch_N.pth) with this config.')
    if (not missing and not unexpected and mis_shaped
            and all(a is not None and _is_head(k) and a[1:] == b[1:]
                    for k, a, b in mis_shaped)):
        theirs, ours = mis_shaped[0][1][0], mis_shaped[0][2][0]
        return (
            f'Likely cause: {what} has a classifier for {theirs} classes, '
            f'but {model_name} has num_classes={ours}. Fix: use the '
            'checkpoint trained (or fine-tuned) on this dataset, or set '
            f'head.num_classes={theirs} if that is the dataset.')
    if not any(k in expected for k in found):
        return (
            'Likely cause: no key of the checkpoint is a key of the model, '
            f'so it is not in mmpretrain\'s layout (it has {_few(found)}; '
            'mmpretrain classifiers have backbone.*, neck.* and head.*), '
            'e.g. a torchvision or timm state dict. Fix: convert it with '
            "mmpretrain's model converters (tools/model_converters/ in the "
            'mmpretrain repository), or use the mmpretrain checkpoint of '
            'that model.')
    causes = []
    if mis_shaped:
        causes.append('mis-shaped weights: another width or architecture')
    if missing or unexpected:
        causes.append('missing or extra layers: another depth or '
                      'architecture')
    return (f'Likely cause: the checkpoint was trained with another model '
            f'({"; ".join(causes)}). Fix: make {model_name} the one the '
            'checkpoint was trained with, or use the checkpoint trained with '
            'this config.')
