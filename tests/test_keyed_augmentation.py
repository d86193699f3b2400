"""Keyed augmentation: a sample's random view depends on (seed, epoch, index).

The views are drawn by mmpretrain's own RandomResizedCrop and RandomFlip on a
real CUB-layout dataset; the property is checked against the things a run
changes without meaning to change the data: the state of the global random
generators, the number and persistence of dataloader workers, the sampler's
order, and a kill and resume.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import DataLoader

import figkd_mmrazor  # noqa: F401
from figkd_mmrazor.replay.keyed_views import (KeyedAugmentDataset,
                                             apply_to_config, sample_key,
                                             use_keyed_augmentation)
from tiny import AUGMENTED, ROOT, run_tool, tiny_config, tiny_cub


@pytest.fixture(scope='module')
def cub(tmp_path_factory):
    return tiny_cub(tmp_path_factory.mktemp('data') / 'cub')


def _dataset(cub, data_seed=0):
    return DATASETS.build(dict(
        type='KeyedAugmentDataset', data_seed=data_seed,
        dataset=dict(type='CUB', _scope_='mmpretrain', data_root=str(cub),
                     split='train', pipeline=AUGMENTED)))


def test_view_depends_on_key_only_and_leaves_global_generators_alone(cub):
    dataset = _dataset(cub)
    first = dataset[(3, 5)]['inputs']
    # Disturb every global generator; the same key gives the same view.
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    states = (random.getstate(), np.random.get_state()[1].copy(),
              torch.get_rng_state().clone())
    again = dataset[(3, 5)]
    assert torch.equal(again['inputs'], first)
    assert sample_key(again['data_samples']) == (3, 5)
    # ... and the call consumed none of their randomness.
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    # Other epochs, other data seeds: other views (RandomResizedCrop draws
    # continuous scales, so equal crops for all of these would be a bug).
    views = [dataset[(e, 5)]['inputs'] for e in range(4)]
    views.append(_dataset(cub, data_seed=1)[(3, 5)]['inputs'])
    assert not any(torch.equal(views[3], v) for v in views[:3] + views[4:])


def test_without_the_wrapper_the_view_follows_the_global_generator(cub):
    # The fault the wrapper removes: the plain dataset draws from np.random.
    plain = _dataset(cub).dataset
    np.random.seed(0)
    a = plain[5]['inputs']
    np.random.seed(1)
    b = plain[5]['inputs']
    assert not torch.equal(a, b)


def _views(dataset, epochs, num_workers, sampler_seed):
    sampler = DATA_SAMPLERS.build(
        dict(type='KeyedSampler',
             sampler=dict(type='DefaultSampler', shuffle=True)),
        default_args=dict(dataset=dataset, seed=sampler_seed))
    loader = DataLoader(dataset, batch_size=3, sampler=sampler,
                        num_workers=num_workers, collate_fn=pseudo_collate,
                        persistent_workers=num_workers > 0)
    views, orders = {}, []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = []
        for batch in loader:
            for inputs, sample in zip(batch['inputs'], batch['data_samples']):
                key = sample_key(sample)
                views[key] = inputs
                order.append(key[1])
        orders.append(order)
    return views, orders


def test_views_do_not_depend_on_workers_or_sampler_order(cub):
    dataset = _dataset(cub)
    main, main_order = _views(dataset, 2, num_workers=0, sampler_seed=0)
    workers, workers_order = _views(dataset, 2, num_workers=2,
                                    sampler_seed=7)
    assert main_order != workers_order  # another order of the samples ...
    assert set(main) == set(workers) == {(e, i) for e in range(2)
                                          for i in range(len(dataset))}
    for key in main:  # ... and, with persistent workers, the same views
        assert torch.equal(main[key], workers[key]), key


def test_plain_index_is_refused_naming_the_sampler(cub):
    with pytest.raises(TypeError, match='KeyedSampler'):
        _dataset(cub)[4]


def test_use_keyed_augmentation_wraps_once_and_keeps_the_seed(cub, tmp_path):
    cfg = Config.fromfile(tiny_config('configs/kd/cub_r50_r18.py', cub,
                                      tmp_path / 'c.py'))
    sampler = cfg.train_dataloader.sampler.to_dict()
    use_keyed_augmentation(cfg, data_seed=3)
    use_keyed_augmentation(cfg, data_seed=3)  # idempotent
    loader = cfg.train_dataloader
    assert loader.dataset.type == 'KeyedAugmentDataset'
    assert loader.dataset.dataset.type == 'CUB'
    assert loader.sampler.sampler.to_dict() == sampler
    with pytest.raises(ValueError, match='data_seed=3') as err:
        use_keyed_augmentation(cfg, data_seed=4)
    # Both settings are named, with their values.
    assert 'train_dataloader.dataset.data_seed=3' in str(err.value)
    assert 'keyed_augmentation.data_seed=4' in str(err.value)


def test_config_key_asks_tools_train_for_keyed_views(cub, tmp_path):
    path = tiny_config('configs/kd/cub_r50_r18.py', cub, tmp_path / 'c.py')
    plain = Config.fromfile(path)
    dataset = plain.train_dataloader.dataset.to_dict()
    assert apply_to_config(plain).train_dataloader.dataset.to_dict() == \
        dataset  # no key: nothing changes
    cfg = Config.fromfile(path)
    cfg.keyed_augmentation = dict(data_seed=5)
    loader = apply_to_config(cfg).train_dataloader
    assert loader.dataset.type == 'KeyedAugmentDataset'
    assert loader.dataset.data_seed == 5
    assert loader.dataset.dataset.to_dict() == dataset
    assert loader.sampler.type == 'KeyedSampler'
    cfg = Config.fromfile(path)
    cfg.keyed_augmentation = dict(seed=5)
    with pytest.raises(ValueError, match='only data_seed'):
        apply_to_config(cfg)


def _scalars(work_dir):
    losses = {}
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                losses[row['step']] = row['loss']
    return losses


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)[
        'state_dict']


def test_killed_and_resumed_run_with_random_augmentation_equals_plain_run(
        cub, tmp_path):
    epochs, iters = 5, 4  # 16 images, batch 4
    cfg_path = tiny_config('configs/demo/kd.py', cub, tmp_path / 'c.py',
                           epochs=epochs)
    cfg = Config.fromfile(cfg_path)
    cfg.train_dataloader.dataset.pipeline = AUGMENTED
    use_keyed_augmentation(cfg, data_seed=0)
    cfg.dump(str(cfg_path))
    run_tool('tools/train.py', cfg_path, '--work-dir', tmp_path / 'plain')

    # SIGKILL as soon as mmengine has recorded a first checkpoint.
    killed = tmp_path / 'killed'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py', str(cfg_path), '--work-dir',
         str(killed)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / 'last_checkpoint').exists() and proc.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last_checkpoint = (killed / 'last_checkpoint').read_text().strip()
    last = int(last_checkpoint.rsplit('epoch_', 1)[1].split('.')[0])
    assert last < epochs, f'finished before the kill: {last_checkpoint}'

    resumed = run_tool('tools/train.py', cfg_path, '--work-dir', killed,
                       '--resume')
    assert f'resumed epoch: {last}, iter: {last * iters}' in (
        resumed.stdout + resumed.stderr)
    plain = _weights(tmp_path / 'plain' / f'epoch_{epochs}.pth')
    after = _weights(killed / f'epoch_{epochs}.pth')
    assert plain.keys() == after.keys()
    for key in plain:
        assert torch.equal(plain[key], after[key]), key
    plain_losses, resumed_losses = _scalars(tmp_path / 'plain'), _scalars(
        killed)
    assert resumed_losses.keys() == plain_losses.keys()
    assert resumed_losses == plain_losses
