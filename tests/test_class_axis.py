"""Class axes derived from the teacher (``class_order='teacher'``,
``class_graph='teacher'``): what they derive, where they are kept, and what
is refused.

References outside the code under test: the cosine similarity and the
Fiedler vector recomputed here with numpy from the checkpoint's tensor, a
real ``torchrun`` for two processes, mmengine's own resume.
"""
import json
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmrazor.registry import MODELS

import figkd_mmrazor  # noqa: F401
from figkd_mmrazor import class_axis
from figkd_mmrazor.checkpoints import load_checkpoint
from figkd_mmrazor.class_axis import ClassAxisError
from tiny import run_tool, save_random_teacher, tiny_config, tiny_cub

C = 8
LOSS = 'model.distiller.distill_losses.loss_figkd'
ORDER_KEY = 'distiller.distill_losses.loss_figkd.class_order'


@pytest.fixture(scope='module')
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp('class_axis')


@pytest.fixture(scope='module')
def cub(tmp):
    return tiny_cub(tmp / 'cub', num_classes=C)


def _save_teacher(cub, tmp, seed, path=None):
    cfg = Config.fromfile(tiny_config('configs/demo/kd.py', cub,
                                      tmp / f'teacher{seed}.py',
                                      num_classes=C))
    return save_random_teacher(cfg, path or tmp / f'teacher{seed}.pth', seed)


@pytest.fixture(scope='module')
def teacher(cub, tmp):
    return _save_teacher(cub, tmp, seed=0)


def _similarity(checkpoint):
    """The teacher's class similarity, recomputed with numpy."""
    w = torch.load(checkpoint, weights_only=True)['state_dict'][
        'head.fc.weight'].double().numpy()
    w = w - w.mean(0)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    return w @ w.T


def _fiedler_order(sim):
    """Classes sorted by the Fiedler vector of the shifted similarity
    graph's Laplacian, in the direction that starts at the lower index."""
    w = sim - min(sim[~np.eye(len(sim), dtype=bool)].min(), 0)
    np.fill_diagonal(w, 0)
    _, vectors = np.linalg.eigh(np.diag(w.sum(1)) - w)
    order = list(np.argsort(vectors[:, 1]))
    return order if order[0] < order[-1] else order[::-1]


def _config(cub, path, teacher, epochs=2, **loss):
    path = tiny_config('configs/demo/figkd.py', cub, path, num_classes=C,
                       epochs=epochs)
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = str(teacher)
    cfg.model.distiller.distill_losses.loss_figkd.update(loss)
    cfg.dump(str(path))
    return path


def _loss(cfg):
    return MODELS.build(class_axis.apply_to_config(cfg).model.distiller.
                        distill_losses.loss_figkd)


# What is derived ------------------------------------------------------

def test_teacher_order_and_graph_are_the_teachers(cub, tmp, teacher):
    sim = _similarity(teacher)
    cfg = Config.fromfile(_config(cub, tmp / 'o.py', teacher,
                                  class_order='teacher'))
    loss = _loss(cfg)
    assert loss.class_order.tolist() == _fiedler_order(sim)
    assert loss.class_order.tolist() != list(range(C))
    spec = cfg.model.distiller.distill_losses.loss_figkd.class_order
    assert spec['teacher_checkpoint'] == str(teacher)
    assert len(spec['teacher_sha256']) == 64
    graph = _loss(Config.fromfile(_config(
        cub, tmp / 'g.py', teacher, type='GraphFiGKDLoss',
        class_graph='teacher')))
    np.testing.assert_allclose(graph.class_graph.numpy(), sim, atol=1e-11)
    assert ORDER_KEY in {f'distiller.distill_losses.loss_figkd.{k}'
                         for k in loss.state_dict()}
    assert 'class_graph' in graph.state_dict()


def test_unresolved_or_teacherless_settings_are_refused(cub, tmp, teacher):
    with pytest.raises(ValueError, match='apply_to_config'):
        MODELS.build(dict(type='FiGKDLoss', class_order='teacher'))
    with pytest.raises(ValueError, match='apply_to_config'):
        MODELS.build(dict(type='GraphFiGKDLoss', class_graph='teacher'))
    cfg = Config.fromfile(_config(cub, tmp / 'n.py', teacher,
                                  class_order='teacher'))
    cfg.model.teacher_ckpt = None
    with pytest.raises(ClassAxisError, match='model.teacher_ckpt must'):
        class_axis.apply_to_config(cfg)


def test_teacher_changed_after_the_config_was_resolved_is_refused(
        cub, tmp, teacher):
    copy = tmp / 'moving_teacher.pth'
    shutil.copy(teacher, copy)
    cfg = class_axis.apply_to_config(Config.fromfile(_config(
        cub, tmp / 'm.py', copy, class_order='teacher')))
    _save_teacher(cub, tmp, seed=1, path=copy)
    with pytest.raises(ClassAxisError, match='the teacher changed'):
        MODELS.build(cfg.model.distiller.distill_losses.loss_figkd)


def test_order_file_of_another_teacher_is_stale(cub, tmp, teacher):
    """``tools/analysis/class_order.py`` records the teacher it read; a run
    with another teacher refuses the file, the same teacher takes it."""
    other = _save_teacher(cub, tmp, seed=2)
    out = tmp / 'order.json'
    cfg_path = _config(cub, tmp / 'f.py', teacher)
    run_tool('tools/analysis/class_order.py', cfg_path, teacher,
             '--out', out)
    written = json.loads(out.read_text())
    assert len(written['teacher_sha256']) == 64
    cfg = Config.fromfile(cfg_path)
    cfg.model.distiller.distill_losses.loss_figkd.class_order = str(out)
    assert _loss(cfg).class_order.tolist() == written['class_order']
    cfg.model.teacher_ckpt = str(other)
    with pytest.raises(ClassAxisError, match='stale') as err:
        class_axis.apply_to_config(cfg)
    assert str(out) in str(err.value)


def test_a_state_dict_with_another_axis_is_refused(cub, tmp, teacher):
    mine = MODELS.build(dict(type='FiGKDLoss',
                             class_order=list(range(C))))
    other = MODELS.build(dict(type='FiGKDLoss',
                              class_order=list(range(C))[::-1]))
    mine.load_state_dict(mine.state_dict())
    with pytest.raises(ValueError, match='another class_order'):
        mine.load_state_dict(other.state_dict())
    sim = _similarity(teacher)
    graph = MODELS.build(dict(type='GraphFiGKDLoss', class_graph=sim))
    graph.load_state_dict(graph.state_dict())
    changed = MODELS.build(dict(type='GraphFiGKDLoss',
                                class_graph=sim[::-1, ::-1].copy()))
    with pytest.raises(ValueError, match='another class_graph'):
        graph.load_state_dict(changed.state_dict())


# Training with it ---------------------------------------------------------

def _order_in(checkpoint):
    return load_checkpoint(str(checkpoint))['state_dict'][ORDER_KEY].tolist()


def _weights(work_dir, epoch=2):
    return load_checkpoint(str(work_dir / f'epoch_{epoch}.pth'))[
        'state_dict']


def test_train_record_and_replay_with_the_teacher_order(cub, tmp, teacher):
    """1 process records the teacher with the derived order, a second run
    replays it: both checkpoints hold the teacher's order, the saved config
    names the teacher's content, and the replaying run equals the recording
    one bit for bit."""
    cfg = _config(cub, tmp / 'train.py', teacher, class_order='teacher')
    cache = tmp / 'cache'
    run_tool('tools/train.py', cfg, '--work-dir', tmp / 'record',
             '--teacher-cache', cache)
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp / 'replay',
                    '--teacher-cache', cache)
    assert 'Teacher cache: replay' in proc.stdout
    expected = _fiedler_order(_similarity(teacher))
    for work in ('record', 'replay'):
        assert _order_in(tmp / work / 'epoch_2.pth') == expected
        saved = Config.fromfile(tmp / work / 'train.py')
        assert saved.model.distiller.distill_losses.loss_figkd.class_order[
            'teacher_sha256'] == class_axis.apply_to_config(
                Config.fromfile(cfg)).model.distiller.distill_losses.\
            loss_figkd.class_order['teacher_sha256']
    a, b = _weights(tmp / 'record'), _weights(tmp / 'replay')
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_train_with_the_teacher_order(cub, tmp, teacher):
    cfg = _config(cub, tmp / 'two.py', teacher, epochs=1,
                  class_order='teacher')
    run_tool('tools/train.py', cfg, '--work-dir', tmp / 'two',
             '--launcher', 'pytorch', nproc=2)
    assert _order_in(tmp / 'two' / 'epoch_1.pth') == _fiedler_order(
        _similarity(teacher))


def test_resume_keeps_the_order_and_a_changed_teacher_is_refused(
        cub, tmp, teacher):
    copy = tmp / 'resume_teacher.pth'
    shutil.copy(teacher, copy)
    cfg = _config(cub, tmp / 'resume.py', copy, epochs=1,
                  class_order='teacher')
    work = tmp / 'resume'
    run_tool('tools/train.py', cfg, '--work-dir', work)
    first = _order_in(work / 'epoch_1.pth')
    assert first == _fiedler_order(_similarity(copy))
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr
    assert _order_in(work / 'epoch_2.pth') == first
    _save_teacher(cub, tmp, seed=3, path=copy)
    assert _fiedler_order(_similarity(copy)) != _order_in(
        work / 'epoch_2.pth')
    more = ('--cfg-options', 'train_cfg.max_epochs=3')
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    *more, check=False)
    assert proc.returncode != 0
    assert 'ResumeMismatchError' in proc.stderr
    assert 'loss_figkd.class_order' in proc.stderr
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    '--resume-with-changes', *more, check=False)
    assert proc.returncode != 0
    assert 'another class_order' in proc.stderr
    assert not (work / 'epoch_3.pth').exists()
