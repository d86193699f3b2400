"""Random augmentation that is a function of (data seed, epoch, sample) only.

mmengine draws a sample's random crop and flip from whatever state the global
random generators of the loading process happen to be in, so the view a
sample gets depends on the model seed, the order of the batches, the number
of dataloader workers and processes, and on whether the run was resumed
(mmengine's checkpoints do not hold the generators of the data pipeline).

Two registered wrappers fix the view of every sample instead:

* :class:`KeyedSampler` wraps any sampler and yields keys ``(epoch, index)``
  instead of bare indices. The epoch comes from ``set_epoch``, which
  mmengine's ``DistSamplerSeedHook`` (``default_hooks.sampler_seed``) calls in
  the main process before every epoch, so it reaches every worker, persistent
  or not, with the key itself.
* :class:`KeyedAugmentDataset` wraps any dataset; for a key it runs the
  wrapped dataset's pipeline with python's ``random``, numpy's global
  generator and torch's CPU generator seeded from
  ``(data_seed, epoch, index)``, restores the generators afterwards, and
  stores the key in the sample's metainfo as ``sample_key``.

In a config, ``keyed_augmentation = dict(data_seed=0)`` asks
``tools/train.py`` to wrap the training loader (:func:`apply_to_config`; a
teacher cache wraps it itself), which amounts to::

    train_dataloader = dict(
        dataset=dict(type='KeyedAugmentDataset', data_seed=0,
                     dataset=dict(type='CUB', ...)),
        sampler=dict(type='KeyedSampler',
                     sampler=dict(type='DefaultSampler', shuffle=True)))

Both are registered in mmengine's root registries, so every scope (mmrazor,
mmpretrain) finds them.
"""
import copy
import random
from typing import Iterator, Tuple

import numpy as np
import torch
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler

KEY_FIELD = 'sample_key'


def _seeds(data_seed: int, epoch: int, index: int) -> Tuple[int, int]:
    """Two well-mixed 32-bit words from the key (SeedSequence hashing)."""
    words = np.random.SeedSequence(
        [int(data_seed), int(epoch), int(index)]).generate_state(2)
    return int(words[0]), int(words[1])


@DATA_SAMPLERS.register_module()
class KeyedSampler(Sampler):
    """Yield ``(epoch, index)`` keys from any index sampler.

    Args:
        dataset: The dataset to sample (given by mmengine's Runner).
        sampler (dict): Config of the wrapped sampler, built with the same
            ``dataset`` and ``seed``. Defaults to
            ``dict(type='DefaultSampler', shuffle=True)``.
        seed (int, optional): Passed to the wrapped sampler (the Runner
            gives the run's seed).
    """

    def __init__(self, dataset, sampler: dict = None, seed=None) -> None:
        cfg = copy.deepcopy(sampler) if sampler else dict(
            type='DefaultSampler', shuffle=True)
        if isinstance(cfg, dict) and cfg.get('type') in ('KeyedSampler',
                                                         KeyedSampler):
            raise ValueError('KeyedSampler wraps another KeyedSampler; wrap '
                             'the index sampler (e.g. DefaultSampler) once.')
        self.sampler = DATA_SAMPLERS.build(
            cfg, default_args=dict(dataset=dataset, seed=seed))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = self.epoch
        for index in self.sampler:
            yield epoch, int(index)

    def __len__(self) -> int:
        return len(self.sampler)


@DATASETS.register_module()
class KeyedAugmentDataset(Dataset):
    """Run a dataset's random pipeline seeded by the sample's key.

    ``dataset[(epoch, index)]`` is ``dataset.dataset[index]`` computed with
    python ``random``, numpy and torch (CPU) seeded from
    ``(data_seed, epoch, index)`` only; the generators of the calling process
    are restored afterwards, so loading consumes none of their randomness
    whatever the number of workers. The key is added to the packed sample's
    metainfo as ``sample_key``.

    Args:
        dataset (dict | Dataset): The dataset to wrap (or its config).
        data_seed (int): Seed of the augmentation draws. Runs with the same
            data seed see the same view of every sample in every epoch,
            whatever their model seed. Defaults to 0.
    """

    def __init__(self, dataset, data_seed: int = 0) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if isinstance(dataset, KeyedAugmentDataset):
            raise ValueError('KeyedAugmentDataset wraps another '
                             'KeyedAugmentDataset; wrap the dataset once.')
        self.dataset = dataset
        self.data_seed = int(data_seed)

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def get_data_info(self, index: int) -> dict:
        return self.dataset.get_data_info(index)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if not (isinstance(key, (tuple, list)) and len(key) == 2):
            raise TypeError(
                f'KeyedAugmentDataset got the index {key!r}, not an '
                '(epoch, index) key: its sampler must be a KeyedSampler, '
                "e.g. sampler=dict(type='KeyedSampler', sampler=dict("
                "type='DefaultSampler', shuffle=True)) (or call "
                'figkd_mmrazor.replay.keyed_views.use_keyed_augmentation on '
                'the config).')
        epoch, index = int(key[0]), int(key[1])
        py_seed, np_seed = _seeds(self.data_seed, epoch, index)
        saved = (random.getstate(), np.random.get_state(),
                 torch.get_rng_state())
        try:
            random.seed(py_seed)
            np.random.seed(np_seed)
            torch.default_generator.manual_seed((py_seed << 32) | np_seed)
            data = self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if hasattr(samples, 'set_metainfo'):
            samples.set_metainfo({KEY_FIELD: (epoch, index)})
        return data


def sample_key(data_sample) -> Tuple[int, int]:
    """The ``(epoch, index)`` a :class:`KeyedAugmentDataset` sample carries."""
    key = data_sample.metainfo.get(KEY_FIELD) if hasattr(
        data_sample, 'metainfo') else None
    if key is None:
        raise KeyError(
            'This training sample carries no sample_key: the training '
            'dataset must be wrapped in KeyedAugmentDataset with a '
            'KeyedSampler (figkd_mmrazor.replay.keyed_views).')
    return int(key[0]), int(key[1])


def _is(cfg, cls) -> bool:
    return isinstance(cfg, dict) and cfg.get('type') in (cls.__name__, cls)


def use_keyed_augmentation(cfg, data_seed: int = 0):
    """Wrap ``cfg.train_dataloader``'s dataset and sampler (in place, by
    :func:`key_loader`). Returns ``cfg``."""
    key_loader(cfg.train_dataloader, data_seed)
    return cfg


def key_loader(loader, data_seed: int = 0,
               setting: str = 'keyed_augmentation.data_seed'):
    """Wrap a dataloader config's dataset and sampler (in place).

    A loader wrapped already keeps its wrappers; a different ``data_seed``
    there is refused rather than silently replaced (``setting`` names where
    the asked-for seed comes from). Returns ``loader``.
    """
    dataset, sampler = loader.dataset, loader.get('sampler')
    if _is(dataset, KeyedAugmentDataset):
        found = dataset.get('data_seed', 0)
        if found != data_seed:
            raise ValueError(
                f'train_dataloader.dataset.data_seed={found} (the config\'s '
                f'KeyedAugmentDataset), but {setting}={data_seed}: the two '
                'settings must agree. Set them to the same seed, or drop one '
                'of them.')
    else:
        loader.dataset = dict(type='KeyedAugmentDataset', dataset=dataset,
                              data_seed=data_seed)
    if not _is(sampler, KeyedSampler):
        loader.sampler = dict(type='KeyedSampler', sampler=sampler or dict(
            type='DefaultSampler', shuffle=True))
    return loader


def apply_to_config(cfg):
    """Key the training augmentation where the config asks for it with
    ``keyed_augmentation = dict(data_seed=N)``; otherwise leave ``cfg`` as
    it is. Returns ``cfg``."""
    settings = cfg.get('keyed_augmentation')
    if settings is None:
        return cfg
    unknown = set(settings) - {'data_seed'}
    if unknown:
        raise ValueError(f'keyed_augmentation takes only data_seed, not '
                         f'{sorted(unknown)}.')
    return use_keyed_augmentation(cfg, int(settings.get('data_seed', 0)))
