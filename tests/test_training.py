"""End-to-end runs of tools/train.py on a tiny generated CUB, on CPU."""
import os

import pytest
import torch
from mmengine.config import Config

from tiny import run_tool, tiny_config, tiny_cub


@pytest.fixture(scope='module')
def cub(tmp_path_factory):
    return tiny_cub(tmp_path_factory.mktemp('data') / 'cub')


@pytest.fixture(scope='module')
def kd_run(cub, tmp_path_factory):
    """One epoch of MMRazor KD (KLDivergence), ResNet-50 -> ResNet-18."""
    tmp = tmp_path_factory.mktemp('kd')
    cfg = tiny_config('configs/kd/cub_r50_r18.py', cub, tmp / 'kd.py',
                      epochs=1)
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp / 'work')
    return cfg, tmp / 'work', proc.stdout + proc.stderr


def test_kd_trains_and_validates_student_and_teacher(kd_run):
    _, work, log = kd_run
    assert 'distill.loss_kd' in log and 'student.loss' in log
    assert 'accuracy/top1' in log and 'teacher.accuracy/top1' in log
    assert (work / 'epoch_1.pth').is_file()


def test_resume_auto_continues_from_last_checkpoint(kd_run):
    cfg, work, _ = kd_run
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1' in log
    assert 'Epoch(train) [2]' in log and 'Epoch(train) [1]' not in log
    meta = torch.load(work / 'epoch_2.pth', weights_only=False)['meta']
    assert meta['epoch'] == 2


@pytest.fixture(scope='module')
def teacher_ckpt(cub, tmp_path_factory):
    """A ResNet-50 teacher checkpoint saved by mmengine (one tiny epoch)."""
    tmp = tmp_path_factory.mktemp('teacher')
    cfg_path = tiny_config('configs/baselines/cub_r18.py', cub,
                           tmp / 'teacher.py', epochs=1)
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.depth = 50
    cfg.model.head.in_channels = 2048
    cfg.dump(str(cfg_path))
    run_tool('tools/train.py', cfg_path, '--work-dir', tmp / 'work')
    return tmp / 'work' / 'epoch_1.pth'


def test_mmengine_checkpoint_loads_as_teacher_and_stays_frozen(
        cub, teacher_ckpt, tmp_path):
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub,
                      tmp_path / 'figkd.py', epochs=1)
    run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
             '--cfg-options', f'model.teacher_ckpt={teacher_ckpt}')
    teacher = torch.load(teacher_ckpt, weights_only=False)['state_dict']
    distilled = torch.load(tmp_path / 'work' / 'epoch_1.pth',
                           weights_only=False)['state_dict']
    # Loaded, and after training still bitwise equal: weights and BN stats.
    for key, value in teacher.items():
        assert torch.equal(distilled[f'teacher.{key}'], value), key


def test_teacher_checkpoint_with_other_class_count_fails_before_training(
        cub, teacher_ckpt, tmp_path):
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub,
                      tmp_path / 'figkd.py', epochs=1)
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
                    '--cfg-options', f'model.teacher_ckpt={teacher_ckpt}',
                    'model.teacher.head.num_classes=7', check=False)
    assert proc.returncode != 0
    assert ('classifier for 4 classes, but the teacher config has '
            'num_classes=7') in proc.stderr
    assert not (tmp_path / 'work').exists()  # failed before the Runner


def test_torchrun_two_processes_on_cpu(cub, tmp_path):
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub,
                      tmp_path / 'figkd.py', epochs=1, batch_size=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
                    '--launcher', 'pytorch', nproc=2)
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log or 'world_size: 2' in log
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_config_runs_under_mmpretrain_train_script(kd_run, tmp_path):
    """custom_imports loads the plugin, so mmpretrain's own script works."""
    import mmpretrain
    script = (os.path.dirname(mmpretrain.__file__) + '/.mim/tools/train.py')
    cfg, _, _ = kd_run
    proc = run_tool(script, cfg, '--work-dir', tmp_path / 'work',
                    '--no-persistent-workers')
    log = proc.stdout + proc.stderr
    assert 'distill.loss_kd' in log and 'teacher.accuracy/top1' in log
