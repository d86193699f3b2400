"""Teacher cache: record a frozen teacher once, replay it exactly.

Runs go through ``tools/train.py --teacher-cache`` as a user's do, on the
demo pair (ResNet_CIFAR-18, widths 16 -> 8) over tiny generated data with
random crops and flips, deterministic CPU settings (tests/tiny.py), so
equality is bitwise where stated. Outside oracles: MMRazor's KLDivergence on
the cached logits, the teacher's own forward, numpy's float16 rounding, a
real ``torchrun``.
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config

import figkd_mmrazor  # noqa: F401
from figkd_mmrazor.replay import (LOCK, MANIFEST, TeacherCacheError,
                                  apply_to_config, cache_bytes)
from figkd_mmrazor.replay.store import read_manifest
from tiny import (AUGMENTED, run_tool, save_random_teacher, tiny_config,
                  tiny_cub)

EPOCHS = 2


@pytest.fixture(scope='module')
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp('replay')


@pytest.fixture(scope='module')
def cub(tmp):
    return tiny_cub(tmp / 'cub')


def _config(recipe, cub, path, teacher, batch_size=4, epochs=EPOCHS):
    path = tiny_config(f'configs/demo/{recipe}.py', cub, path,
                       epochs=epochs, batch_size=batch_size)
    cfg = Config.fromfile(path)
    cfg.train_dataloader.dataset.pipeline = AUGMENTED
    cfg.model.teacher_ckpt = str(teacher)
    cfg.dump(str(path))
    return path


def _save_teacher(cub, tmp, seed):
    cfg = Config.fromfile(tiny_config('configs/demo/kd.py', cub,
                                      tmp / f'teacher{seed}.py'))
    return save_random_teacher(cfg, tmp / f'teacher{seed}.pth', seed)


@pytest.fixture(scope='module')
def teacher(cub, tmp):
    return _save_teacher(cub, tmp, seed=0)


def _weights(work_dir):
    return torch.load(work_dir / f'epoch_{EPOCHS}.pth', map_location='cpu',
                      weights_only=False)['state_dict']


def _losses(work_dir):
    [path] = work_dir.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row['step']: {k: v for k, v in row.items() if 'loss' in k}
            for row in rows if 'loss' in row}


def _assert_same_run(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert _losses(a) == _losses(b)


def _train(cfg, work_dir, cache, *extra, nproc=None, check=True):
    launcher = ('--launcher', 'pytorch') if nproc else ()
    return run_tool('tools/train.py', cfg, '--work-dir', work_dir,
                    '--teacher-cache', cache, *launcher, *extra, nproc=nproc,
                    check=check)


@pytest.fixture(scope='module')
def recorded(cub, tmp, teacher):
    """A float32 recording run of KD: (config, work dir, cache)."""
    cfg = _config('kd', cub, tmp / 'kd.py', teacher)
    proc = _train(cfg, tmp / 'record', tmp / 'cache')
    assert 'Teacher cache: record' in proc.stdout
    return cfg, tmp / 'record', tmp / 'cache'


def test_replaying_run_equals_recording_run(recorded, tmp):
    cfg, record, cache = recorded
    proc = _train(cfg, tmp / 'replay', cache)
    assert 'Teacher cache: replay' in proc.stdout
    _assert_same_run(record, tmp / 'replay')


def _batch(cfg, keys):
    """Keyed training samples, as the data preprocessor hands them over."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[key] for key in keys])


def test_replay_skips_the_teacher_and_feeds_the_recorded_logits(recorded):
    from mmengine.registry import DefaultScope
    from mmrazor.models.losses import KLDivergence
    from mmrazor.registry import MODELS
    cfg = apply_to_config(Config.fromfile(recorded[0]), recorded[2])
    # As mmengine's Runner builds it:
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    # What TeacherCacheHook does when training starts:
    model.teacher_cache.mode = 'replay'
    model.teacher_cache.manifest = read_manifest(recorded[2])
    keys = [(1, 7), (1, 0), (1, 12), (1, 3)]
    data = model.data_preprocessor(_batch(cfg, keys), training=True)
    with np.load(recorded[2] / 'epoch_0001' / 'rank0-of-1.npz') as npz:
        rows = dict(zip(npz['index'].tolist(), npz['logits']))
    cached = torch.from_numpy(np.stack([rows[i] for _, i in keys]))

    # The recorded rows are the teacher's answers to these very views ...
    model.eval()
    with torch.no_grad():
        live = model.teacher(data['inputs'], mode='tensor')
    torch.testing.assert_close(cached, live, rtol=1e-5, atol=1e-6)

    # ... and replay hands them to MMRazor's loss without running it.
    def refuse(*args, **kwargs):
        raise AssertionError('the teacher ran during replay')

    model.teacher.forward = refuse
    losses = model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        student = model.student(data['inputs'], mode='tensor')
    expected = KLDivergence(tau=4.0, loss_weight=1.0)(student, cached)
    assert torch.equal(losses['distill.loss_kd'].detach(), expected)


def test_float16_cache_rounds_the_teacher_and_stays_close(recorded, cub, tmp,
                                                         teacher):
    cfg, record, cache32 = recorded
    cache16 = tmp / 'cache16'
    _train(cfg, tmp / 'record16', cache16, '--cfg-options',
           'teacher_cache.dtype=float16')
    for epoch in range(EPOCHS):
        name = f'epoch_{epoch:04d}/rank0-of-1.npz'
        with np.load(cache32 / name) as a, np.load(cache16 / name) as b:
            assert b['logits'].dtype == np.float16
            full = a['logits'][np.argsort(a['index'])]
            half = b['logits'][np.argsort(b['index'])]
        # numpy's rounding of the float32 answers is the oracle ...
        assert np.array_equal(half, full.astype(np.float16))
        # ... an error of at most half a float16 step (2**-11 relative).
        error = np.abs(half.astype(np.float32) - full)
        assert (error <= np.abs(full) * 2.0**-11 + 2.0**-25).all()
        assert error.max() > 0
    # The recording run trained on the rounded answers: its first distill
    # loss differs from the float32 run's in the last digits only.
    step32, step16 = _losses(record)[1], _losses(tmp / 'record16')[1]
    assert step16['distill.loss_kd'] != step32['distill.loss_kd']
    assert step16['distill.loss_kd'] == pytest.approx(
        step32['distill.loss_kd'], rel=1e-3)
    assert step16['student.loss'] == step32['student.loss']
    assert cache_bytes(16, 4, 1, 'float16') == 16 * (4 * 2 + 8)


def test_torchrun_record_then_one_and_two_process_replay(recorded, cub, tmp,
                                                         teacher):
    """Two processes of batch 2 record; each replay equals its live twin:
    two processes replaying equal the recording run, one process of batch
    4 replaying the two-process cache equals the one-process run of batch 4
    (the ``recorded`` KD run, whose teacher ran live)."""
    cfg1, record1, _ = recorded
    cfg2 = _config('kd', cub, tmp / 'kd_b2.py', teacher, batch_size=2)
    cache = tmp / 'cache_2proc'
    _train(cfg2, tmp / 'record_2proc', cache, nproc=2)
    files = json.loads((cache / MANIFEST).read_text())['epochs']['0']['files']
    assert sorted(files) == ['epoch_0000/rank0-of-2.npz',
                            'epoch_0000/rank1-of-2.npz']
    _train(cfg2, tmp / 'replay_2proc', cache, nproc=2)
    _assert_same_run(tmp / 'record_2proc', tmp / 'replay_2proc')
    _train(cfg1, tmp / 'replay_1proc', cache)
    _assert_same_run(record1, tmp / 'replay_1proc')


# What may differ between recording and replaying runs, and what may not ----

def test_seed_batch_size_workers_and_loss_may_differ(recorded, cub, tmp,
                                                     teacher):
    cfg = Config.fromfile(_config('figkd', cub, tmp / 'figkd.py', teacher,
                                  batch_size=3))
    cfg.randomness.seed = 7
    cfg.train_dataloader.num_workers = 2
    assert apply_to_config(cfg, recorded[2]).model.teacher_cache.mode == \
        'replay'


def _refusal(cfg, cache, match):
    with pytest.raises(TeacherCacheError, match=match) as err:
        apply_to_config(cfg, cache)
    return str(err.value)


def test_changed_teacher_checkpoint_is_refused(recorded, cub, tmp):
    cfg = Config.fromfile(recorded[0])
    cfg.model.teacher_ckpt = str(_save_teacher(cub, tmp, seed=1))
    message = _refusal(cfg, recorded[2], 'teacher_checkpoint_sha256')
    assert 'another teacher_cache.dir' in message


def test_changed_pipeline_is_refused_naming_the_setting(recorded):
    cfg = Config.fromfile(recorded[0])
    cfg.train_dataloader.dataset.pipeline[1].scale = 28
    _refusal(cfg, recorded[2], r'train_pipeline\.1\.scale: 32 in '
             'the cache, 28 in this config')


def test_other_dtype_or_data_seed_is_refused(recorded):
    cfg = Config.fromfile(recorded[0])
    cfg.teacher_cache = dict(dtype='float16')
    _refusal(cfg, recorded[2], 'dtype: "float32" in the cache')
    cfg.teacher_cache = dict(data_seed=1)
    _refusal(cfg, recorded[2], 'data_seed: 0 in the cache, 1')


def _copy_cache(cache, to, drop_epoch):
    shutil.copytree(cache, to)
    manifest = json.loads((to / MANIFEST).read_text())
    del manifest['epochs'][str(drop_epoch)]
    (to / MANIFEST).write_text(json.dumps(manifest))
    return to


def test_missing_epoch_is_refused(recorded, tmp):
    cfg = Config.fromfile(recorded[0])
    cache = _copy_cache(recorded[2], tmp / 'no_epoch_1', drop_epoch=1)
    message = _refusal(cfg, cache, 'incomplete')
    assert 'holds epochs 0' in message and 'missing 1' in message
    # The resume command names the recording run's own work dir.
    assert f'--work-dir {recorded[1]} --resume' in message
    # A run longer than the recording is refused the same way.
    longer = Config.fromfile(recorded[0])
    longer.train_cfg.max_epochs = EPOCHS + 1
    _refusal(longer, recorded[2], f'missing {EPOCHS}')
    # While its recording run is alive, the cache is not touched.
    (cache / LOCK).write_text(json.dumps(dict(
        host=os.uname().nodename, pid=os.getpid(), work_dir='elsewhere')))
    _refusal(Config.fromfile(recorded[0]), cache, 'is being recorded by '
             f'process {os.getpid()}')


def test_teachers_that_cannot_be_replayed_are_refused(recorded):
    cases = {
        'teacher_trainable': dict(teacher_trainable=True),
        'teacher_ckpt': dict(teacher_ckpt=None),
        'teacher_norm_eval': dict(teacher_norm_eval=False),
    }
    for match, change in cases.items():
        cfg = Config.fromfile(recorded[0])
        cfg.model.update(change)
        _refusal(cfg, recorded[2], match)
    cfg = Config.fromfile(recorded[0])
    cfg.model.distiller.teacher_recorders = dict(
        logits=dict(type='FunctionOutputs', source='torch.nn.functional.relu'))
    _refusal(cfg, recorded[2], "dict\\(type='Logits'\\)")


def test_data_and_loops_that_cannot_be_keyed_are_refused(recorded):
    def changed(edit):
        cfg = Config.fromfile(recorded[0])
        edit(cfg)
        return cfg

    cases = {
        'batch_augments': lambda c: c.data_preprocessor.update(
            batch_augments=dict(augments=[dict(type='Mixup', alpha=0.8)])),
        'EpochBasedTrainLoop': lambda c: c.update(train_cfg=dict(
            type='IterBasedTrainLoop', max_iters=8)),
        'DistSamplerSeedHook': lambda c: c.default_hooks.update(
            sampler_seed=None),
        'distill_deliveries': lambda c: c.model.distiller.update(
            distill_deliveries=dict(d=dict(type='MethodOutputs'))),
    }
    for match, edit in cases.items():
        _refusal(changed(edit), recorded[2], match)


def test_cache_that_does_not_fit_the_disk_is_refused_before_training(
        recorded, tmp):
    cfg = recorded[0]
    cache, work = tmp / 'full_disk' / 'cache', tmp / 'full_disk' / 'work'
    needed = cache_bytes(16, 4, EPOCHS)  # 16 samples, 4 classes, float32
    # tools/train.py in a process whose disk has one byte too few free.
    code = (
        'import collections, runpy, shutil, sys\n'
        "usage = collections.namedtuple('usage', 'total used free')\n"
        f'shutil.disk_usage = lambda path: usage(10**12, 0, {needed - 1})\n'
        f"sys.argv = ['tools/train.py', {str(cfg)!r}, '--work-dir', "
        f"{str(work)!r}, '--teacher-cache', {str(cache)!r}]\n"
        "runpy.run_path('tools/train.py', run_name='__main__')\n")
    proc = run_tool('-c', code, check=False)
    assert proc.returncode != 0
    assert 'TeacherCacheError' in proc.stderr
    assert f'needs {needed} bytes more but only {needed - 1} bytes' in \
        proc.stderr
    assert "teacher_cache.dtype='float16'" in proc.stderr
    # Refused before the first step: no cache files, no checkpoint.
    assert not cache.exists() or not any(cache.iterdir())
    assert not list(work.glob('*.pth'))


def test_benchmark_replay_row_times_figkd_without_the_teacher(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark_step.py', '--config',
                    'configs/demo/figkd.py', '--size', '32', '--batch', '4',
                    '--steps', '2', '--warmup', '1', '--threads', '1',
                    '--methods', 'student', 'figkd', 'replay', '--figkd',
                    'haar:1', '--json', out)
    assert '| FiGKD replay |' in proc.stdout
    rows = {r['method']: r for r in json.loads(out.read_text())['rows']}
    # Same weights, batch, teacher answers and steps: the same training,
    # step for step, as FiGKD with its teacher running.
    assert rows['FiGKD replay']['loss'] == rows['FiGKD haar L1']['loss']
    assert rows['student (CE)']['ratio_to_student'] == 1.0


# MMRazor's own recorders, and what cannot change the teacher's answers -----

def test_mmrazor_module_outputs_on_the_head_replays_like_logits(cub, tmp,
                                                                teacher):
    """MMRazor's KD recorders (ModuleOutputs on head.fc) record and
    replay; the replay equals its live twin bit for bit."""
    path = _config('kd', cub, tmp / 'kd_fc.py', teacher)
    cfg = Config.fromfile(path)
    for side in ('student_recorders', 'teacher_recorders'):
        cfg.model.distiller[side] = dict(
            logits=dict(type='ModuleOutputs', source='head.fc'))
    cfg.dump(str(path))
    _train(path, tmp / 'record_fc', tmp / 'cache_fc')
    proc = _train(path, tmp / 'replay_fc', tmp / 'cache_fc')
    assert 'Teacher cache: replay' in proc.stdout
    _assert_same_run(tmp / 'record_fc', tmp / 'replay_fc')


def test_differences_that_cannot_change_a_logit_replay(recorded):
    cfg = Config.fromfile(recorded[0])
    cfg.model.teacher.head.loss = dict(type='CrossEntropyLoss',
                                       loss_weight=0.5)
    cfg.model.teacher.head.topk = (1, 2)
    cfg.model.teacher.backbone.init_cfg = None
    cfg.model.teacher.init_cfg = dict(type='Pretrained', checkpoint='x.pth')
    assert apply_to_config(cfg, recorded[2]).model.teacher_cache.mode == \
        'replay'


# What is on disk is checked against the manifest ---------------------------

SHARD = 'epoch_{:04d}/rank0-of-1.npz'


def _swap(cache):
    a, b = cache / SHARD.format(0), cache / SHARD.format(1)
    a.rename(cache / 'tmp.npz')
    b.rename(a)
    (cache / 'tmp.npz').rename(b)


def _point_epoch_1_at_epoch_0(cache, with_checksum=True):
    manifest = json.loads((cache / MANIFEST).read_text())
    epochs = manifest['epochs']
    if with_checksum:  # the whole entry, checksum and all
        epochs['1'] = epochs['0']
    else:  # only the file name
        entry = epochs['1']['files'].pop(SHARD.format(1))
        epochs['1']['files'][SHARD.format(0)] = entry
    (cache / MANIFEST).write_text(json.dumps(manifest))


def _point_by_name_only(cache):
    _point_epoch_1_at_epoch_0(cache, with_checksum=False)


def _truncate(cache):
    path = cache / SHARD.format(1)
    path.write_bytes(path.read_bytes()[:-100])


def _flip_a_bit(cache):
    path = cache / SHARD.format(1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize('damage, says', [
    (_swap, 'epoch_0000/rank0-of-1.npz cannot serve epoch 0'),
    (_point_epoch_1_at_epoch_0, 'it holds epoch 0, rank 0 of 1'),
    (_point_by_name_only, "its sha256 is not the manifest's"),
    (_truncate, 'bytes, the manifest lists'),
    (_flip_a_bit, "its sha256 is not the manifest's"),
], ids=['swapped', 'pointed-with-checksum', 'pointed', 'truncated',
        'bit-flipped'])
def test_a_damaged_shard_is_refused_before_replay_naming_it(
        recorded, tmp, damage, says):
    from figkd_mmrazor.replay import store
    cache = tmp / f'damaged{damage.__name__}'
    shutil.copytree(recorded[2], cache)
    damage(cache)
    with pytest.raises(TeacherCacheError) as err:
        store.verify(str(cache), read_manifest(cache), range(EPOCHS))
    assert says in str(err.value)
    assert 'Record the cache anew into another folder' in str(err.value)


def test_train_refuses_a_damaged_cache_before_the_first_step(recorded, tmp):
    cfg, _, cache = recorded
    damaged = tmp / 'flipped_for_train'
    shutil.copytree(cache, damaged)
    _flip_a_bit(damaged)  # in the last epoch's shard
    work = tmp / 'on_damaged'
    proc = _train(cfg, work, damaged, check=False)
    assert proc.returncode != 0
    assert 'TeacherCacheError' in proc.stderr
    assert f'{damaged}/epoch_0001/rank0-of-1.npz cannot serve' in proc.stderr
    # Not a step was trained: no loss logged, no checkpoint.
    assert not list(work.glob('*.pth'))
    assert not any('loss' in line for path in work.glob(
        '*/vis_data/scalars.json') for line in path.read_text().splitlines())


def test_a_half_written_manifest_names_its_file(recorded, tmp):
    cache = tmp / 'half_manifest'
    shutil.copytree(recorded[2], cache)
    text = (cache / MANIFEST).read_text()
    (cache / MANIFEST).write_text(text[:len(text) // 2])
    message = _refusal(Config.fromfile(recorded[0]), cache,
                       'not readable JSON')
    assert str(cache / MANIFEST) in message


def test_a_cache_replaced_while_a_run_replays_it_stops_the_run(recorded, tmp):
    """Another teacher's cache put in the folder after the run verified it
    (deleted and recorded anew while a job replays): the run stops at the
    next epoch it reads."""
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS

    from figkd_mmrazor.replay import store
    cache = tmp / 'replaced'
    shutil.copytree(recorded[2], cache)
    cfg = apply_to_config(Config.fromfile(recorded[0]), cache)
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    model.teacher_cache.manifest = read_manifest(cache)  # verified at start
    keys = [(1, 0), (1, 1)]
    data = model.data_preprocessor(_batch(cfg, keys), training=True)
    # Another teacher's answers: a whole valid cache, the same file names.
    manifest = read_manifest(cache)
    for epoch in range(EPOCHS):
        with np.load(cache / SHARD.format(epoch)) as npz:
            index, logits = npz['index'], npz['logits']
        store.write_shard(str(cache), epoch, 0, 1, index,
                          dict(logits=logits + 1))
        store.commit_epoch(str(cache), manifest, epoch, 1, ['logits'],
                           manifest['dataset_length'])
    with pytest.raises(TeacherCacheError,
                       match="sha256 is not the manifest's") as err:
        model.loss(data['inputs'], data['data_samples'])
    assert 'while this run replays it' in str(err.value)


def test_images_regenerated_in_place_are_stale(recorded, cub, tmp):
    from PIL import Image
    moved = tmp / 'cub_moved'
    shutil.copytree(cub, moved)

    def config():
        cfg = Config.fromfile(recorded[0])
        cfg.train_dataloader.dataset.data_root = str(moved)
        return cfg

    # The same images in another folder: the cache serves them.
    assert apply_to_config(config(), recorded[2]).model.teacher_cache.mode \
        == 'replay'
    # One training image drawn anew at the same path: refused.
    image = sorted((moved / 'images').rglob('*.png'))[0]
    with Image.open(image) as img:
        pixels = np.array(img)
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(image)
    message = _refusal(config(), recorded[2], r'train_data\.sha256: ')
    assert 'The training images or labels are not those' in message
