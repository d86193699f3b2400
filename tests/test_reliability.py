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

from run_probes import run, with_probes, world_seen
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


def _log_dirs(work_dir):
    return sorted(p.parent.parent for p in work_dir.glob(
        '*/vis_data/scalars.json'))


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
    while not (killed / 'last_checkpoint').exists() and proc.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.05)
    # Meanwhile (the run paused, still holding its work dir) a second run
    # on the same work dir is refused.
    proc.send_signal(signal.SIGSTOP)
    second = run_tool('tools/train.py', cfg, '--work-dir', killed,
                      '--resume', check=False)
    assert second.returncode != 0 and proc.poll() is None
    assert f'is in use by a running job (pid {proc.pid} ' in second.stderr
    proc.send_signal(signal.SIGCONT)
    time.sleep(0.5)  # let it get into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # What the kill left: the checkpoint that --resume must start from.
    at_kill = torch.load((killed / 'last_checkpoint').read_text(),
                         weights_only=False)['meta']
    assert 1 <= at_kill['epoch'] < 3, 'finished before the kill'
    assert at_kill['iter'] == 4 * at_kill['epoch']  # 16 images, batch 4

    resumed = run_tool('tools/train.py', cfg, '--work-dir', killed,
                       '--resume')
    log = resumed.stdout + resumed.stderr
    assert (f'resumed epoch: {at_kill["epoch"]}, iter: {at_kill["iter"]}'
            in log)
    # The resumed run trained only the steps after the checkpoint.
    last_run = _log_dirs(killed)[-1]
    steps = [json.loads(line)['step'] for line in
             (last_run / 'vis_data/scalars.json').read_text().splitlines()
             if 'loss' in line]
    assert steps == list(range(at_kill['iter'] + 1, 13))

    plain = _weights(tmp_path / 'plain' / 'epoch_3.pth')
    resumed = _weights(killed / 'epoch_3.pth')
    assert plain.keys() == resumed.keys()
    for key in plain:
        assert torch.equal(plain[key], resumed[key]), key
    # The resumed run logged the same losses for the steps it trained.
    plain_losses, resumed_log = _scalars(tmp_path / 'plain'), {}
    for run in _log_dirs(killed):
        for line in (run / 'vis_data/scalars.json').read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                resumed_log[row['step']] = row['loss']
    assert resumed_log.keys() == plain_losses.keys()
    assert resumed_log == plain_losses


def test_kill_while_a_checkpoint_is_written_keeps_the_previous_one(
        cub, tmp_path):
    """max_keep_ckpts=1: mmengine alone deletes epoch_1.pth before it
    writes epoch_2.pth, so a kill mid-write left nothing to resume."""
    cfg_path = tiny_config('configs/kd/cub_r50_r18.py', cub,
                           tmp_path / 'kd.py', epochs=2)
    cfg = Config.fromfile(cfg_path)
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.dump(str(cfg_path))
    killer = with_probes(cfg_path, dict(type='KillDuringCheckpointWrite',
                                        epoch=2),
                         out_path=tmp_path / 'kd_killed_at_2.py')
    work = tmp_path / 'work'
    proc = run('tools/train.py', killer, '--work-dir', work, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (work / 'last_checkpoint').read_text() == str(
        work / 'epoch_1.pth')
    assert not (work / 'epoch_2.pth').exists()
    meta = torch.load(work / 'epoch_1.pth', weights_only=False)['meta']
    assert (meta['epoch'], meta['iter']) == (1, 4)

    resumed = run_tool('tools/train.py', cfg_path, '--work-dir', work,
                       '--resume')
    assert 'resumed epoch: 1, iter: 4' in resumed.stdout + resumed.stderr
    assert sorted(p.name for p in work.glob('epoch_*.pth')) == [
        'epoch_2.pth']  # the older one went once epoch_2.pth was complete
    assert not list(work.glob('.*.partial'))
    assert torch.load(work / 'epoch_2.pth',
                      weights_only=False)['meta']['epoch'] == 2


def _groupnorm_student(cfg_path):
    """BatchNorm statistics depend on the per-process batch; GroupNorm not."""
    cfg = Config.fromfile(cfg_path)
    cfg.model.architecture.backbone.norm_cfg = dict(type='GN', num_groups=8)
    cfg.dump(str(cfg_path))
    return cfg_path


def batch_configs(cub, folder):
    """The 2-process setting: KD for 1 epoch, batch 4 on one process and
    batch 2 on each of two (tests/stress_two_process.py repeats it)."""
    one = _groupnorm_student(tiny_config(
        'configs/kd/cub_r50_r18.py', cub, folder / 'one.py', epochs=1,
        batch_size=4))
    two = with_probes(_groupnorm_student(tiny_config(
        'configs/kd/cub_r50_r18.py', cub, folder / 'two.py', epochs=1,
        batch_size=2)), dict(type='RecordWorldSize'))
    return one, two


def test_two_processes_with_batch_b_equal_one_with_batch_2b(cub, tmp_path):
    one, two = batch_configs(cub, tmp_path)
    run_tool('tools/train.py', one, '--work-dir', tmp_path / 'one')
    run('tools/train.py', two, '--work-dir', tmp_path / 'two',
        '--launcher', 'pytorch', nproc=2)  # both processes exit 0
    assert world_seen(tmp_path / 'two') == {0: 2, 1: 2}
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
