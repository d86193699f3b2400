"""Interrupted and distributed runs equal plain runs; failed starts keep data.

Deterministic CPU settings (tests/tiny.py): one thread, fixed seed, no
random augmentation, so equality is bitwise where stated.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config

from tiny import ROOT, run_tool, tiny_config, tiny_cub


@pytest.fixture(scope='module')
def cub(tmp_path_factory):
    return tiny_cub(tmp_path_factory.mktemp('data') / 'cub')


def _scalars(work_dir):
    """The training losses mmengine logged, by step."""
    [path] = work_dir.glob('*/vis_data/scalars.json')
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row['step']: row['loss'] for row in rows if 'loss' in row}


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=False)[
        'state_dict']


def _train_cmd(cfg, work_dir, *extra):
    return [sys.executable, 'tools/train.py', str(cfg), '--work-dir',
            str(work_dir), *extra]


def test_killed_and_resumed_run_equals_uninterrupted_run(cub, tmp_path):
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub, tmp_path / 'c.py',
                      epochs=3)
    run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'plain')

    # A real kill (SIGKILL) as soon as the first checkpoint is on disk.
    killed = tmp_path / 'killed'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    proc = subprocess.Popen(_train_cmd(cfg, killed), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / 'epoch_1.pth').exists() and proc.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.05)
    time.sleep(0.5)  # let it get into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / 'epoch_3.pth').exists(), 'finished before the kill'

    run_tool('tools/train.py', cfg, '--work-dir', killed, '--resume')
    plain = _weights(tmp_path / 'plain' / 'epoch_3.pth')
    resumed = _weights(killed / 'epoch_3.pth')
    assert plain.keys() == resumed.keys()
    for key in plain:
        assert torch.equal(plain[key], resumed[key]), key
    # The resumed run logged the same losses for the steps it trained.
    plain_losses, resumed_log = _scalars(tmp_path / 'plain'), {}
    for run in sorted(killed.glob('*/vis_data/scalars.json')):
        for line in run.read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                resumed_log[row['step']] = row['loss']
    assert resumed_log.keys() == plain_losses.keys()
    assert resumed_log == plain_losses


def _groupnorm_student(cfg_path):
    """BatchNorm statistics depend on the per-process batch; GroupNorm not."""
    cfg = Config.fromfile(cfg_path)
    cfg.model.architecture.backbone.norm_cfg = dict(type='GN', num_groups=8)
    cfg.dump(str(cfg_path))
    return cfg_path


def test_two_processes_with_batch_b_equal_one_with_batch_2b(cub, tmp_path):
    one = _groupnorm_student(tiny_config(
        'configs/kd/cub_r50_r18.py', cub, tmp_path / 'one.py', epochs=1,
        batch_size=4))
    two = _groupnorm_student(tiny_config(
        'configs/kd/cub_r50_r18.py', cub, tmp_path / 'two.py', epochs=1,
        batch_size=2))
    run_tool('tools/train.py', one, '--work-dir', tmp_path / 'one')
    run_tool('tools/train.py', two, '--work-dir', tmp_path / 'two',
             '--launcher', 'pytorch', nproc=2)
    single = _weights(tmp_path / 'one' / 'epoch_1.pth')
    distributed = _weights(tmp_path / 'two' / 'epoch_1.pth')
    for key in single:
        torch.testing.assert_close(distributed[key], single[key], rtol=1e-4,
                                   atol=1e-5, msg=key)


def test_failed_start_keeps_the_work_dir(cub, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_7.pth').write_bytes(b'previous checkpoint')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_7.pth'))
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub, tmp_path / 'c.py')
    proc = run_tool('tools/train.py', cfg, '--work-dir', work,
                    '--cfg-options', 'model.teacher_ckpt=missing/teacher.pth',
                    check=False)
    assert proc.returncode != 0
    assert 'missing/teacher.pth does not exist' in proc.stderr
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before
