"""End-to-end runs of tools/train.py, tools/test.py and the launch scripts
on a tiny generated CUB, on CPU."""
import json

import pytest
import torch
from mmengine.config import Config

from run_probes import probe_env, run, with_probes, world_seen
from tiny import ROOT, free_port, run_tool, tiny_config, tiny_cub


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
    [scalars] = work.glob('*/vis_data/scalars.json')
    kd = [json.loads(line)['distill.loss_kd']
          for line in scalars.read_text().splitlines()
          if 'distill.loss_kd' in line]
    assert kd and all(value > 0 for value in kd)


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


def _lrs(work):
    """Learning rate by step of the first run logged in ``work``."""
    path = sorted(work.glob('*/vis_data/scalars.json'))[0]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row['step']: row['lr'] for row in rows if 'lr' in row}


def test_auto_scale_lr_and_no_validate(kd_run, tmp_path):
    """--auto-scale-lr: lr x (total batch / base batch) at every step;
    --no-validate: trains and saves, evaluates nothing."""
    cfg, plain_work, _ = kd_run
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
                    '--auto-scale-lr', '--no-validate')
    log = proc.stdout + proc.stderr
    assert 'accuracy/top1' not in log and 'Epoch(val)' not in log
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
    loaded = Config.fromfile(cfg)
    ratio = (loaded.train_dataloader.batch_size
             / loaded.auto_scale_lr.base_batch_size)
    assert ratio != 1
    plain, scaled = _lrs(plain_work), _lrs(tmp_path / 'work')
    assert scaled.keys() == plain.keys() and len(plain) == 4
    for step in plain:
        assert scaled[step] == pytest.approx(plain[step] * ratio, rel=1e-6)


@pytest.fixture(scope='module')
def probed(cub, tmp_path_factory):
    """A FiGKD config at batch 2 whose processes report their world size."""
    tmp = tmp_path_factory.mktemp('probed')
    return with_probes(tiny_config('configs/figkd/cub_r50_r18.py', cub,
                                   tmp / 'figkd.py', epochs=1, batch_size=2),
                       dict(type='RecordWorldSize'))


def _metrics(path):
    return json.loads(path.read_text())


def test_dist_scripts_train_and_test_on_two_processes(probed, tmp_path):
    """tools/dist_train.sh and dist_test.sh with a real torchrun on CPU."""
    work = tmp_path / 'work'
    proc = run('tools/dist_train.sh', probed, 2, '--work-dir', work,
               env=probe_env(PORT=str(free_port())))
    assert world_seen(work) == {0: 2, 1: 2}
    # 16 training images, 2 per process and step: 4 steps, not 8.
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][4/4]' in log and '[1][5/' not in log
    checkpoint = work / 'epoch_1.pth'
    assert checkpoint.is_file()

    test_dir = tmp_path / 'test'
    run('tools/dist_test.sh', probed, checkpoint, 2, '--work-dir', test_dir,
        '--out', test_dir / 'metrics.json',
        env=probe_env(PORT=str(free_port())))
    assert world_seen(test_dir, 'test') == {0: 2, 1: 2}
    # One process on the whole test split gives the same numbers.
    single = tmp_path / 'single'
    run('tools/test.py', probed, checkpoint, '--work-dir', single,
        '--out', single / 'metrics.json')
    assert world_seen(single, 'test') == {0: 1}
    metrics = _metrics(test_dir / 'metrics.json')
    assert metrics == _metrics(single / 'metrics.json')
    # Each of the 8 test images counted once (no padding by the sampler).
    assert (metrics['accuracy/top1'] * 8 / 100).is_integer()


FAKE_SRUN = """#!/usr/bin/env bash
# Records its arguments, then starts --ntasks copies of the command as
# slurm would, each with its SLURM_* variables.
printf '%s\n' "$@" > "$SRUN_ARGS_FILE"
while [ $# -gt 0 ]; do
  case "$1" in
    -p) shift ;;
    --ntasks=*) ntasks=${1#--ntasks=} ;;
    -*) ;;
    *) break ;;
  esac
  shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \
  SLURM_NODELIST=localhost "$@" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
"""


def test_slurm_scripts_call_srun_as_documented(probed, tmp_path):
    """tools/slurm_train.sh and slurm_test.sh with a fake srun on PATH that
    checks its arguments and runs the tasks (2 for training)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(0o755)
    args_file = tmp_path / 'srun_args.txt'
    env = probe_env(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1',
                    SRUN_ARGS='--quiet', SRUN_ARGS_FILE=str(args_file),
                    MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    env['PATH'] = f'{bin_dir}:{env["PATH"]}'
    work = tmp_path / 'work'
    run('tools/slurm_train.sh', 'cpu_part', 'tiny_job', probed, work,
        '--cfg-options', 'train_cfg.max_epochs=1', env=env)
    args = args_file.read_text().splitlines()
    assert args[:9] == ['-p', 'cpu_part', '--job-name=tiny_job',
                        '--gres=gpu:2', '--ntasks=2', '--ntasks-per-node=2',
                        '--cpus-per-task=1', '--kill-on-bad-exit=1',
                        '--quiet']
    assert args[9:11] == ['python', '-u']
    assert (ROOT / args[11]).resolve() == ROOT / 'tools' / 'train.py'
    assert args[12:] == [str(probed), f'--work-dir={work}',
                         '--launcher=slurm', '--cfg-options',
                         'train_cfg.max_epochs=1']
    assert world_seen(work) == {0: 2, 1: 2}
    assert (work / 'epoch_1.pth').is_file()

    env.update(GPUS='1', GPUS_PER_NODE='1', MASTER_PORT=str(free_port()))
    out = tmp_path / 'metrics.json'
    run('tools/slurm_test.sh', 'cpu_part', 'tiny_test', probed,
        work / 'epoch_1.pth', '--work-dir', tmp_path / 'test', '--out', out,
        env=env)
    args = args_file.read_text().splitlines()
    assert '--ntasks=1' in args
    assert (ROOT / args[11]).resolve() == ROOT / 'tools' / 'test.py'
    assert args[12:14] == [str(probed), str(work / 'epoch_1.pth')]
    assert '--launcher=slurm' in args
    assert world_seen(tmp_path / 'test', 'test') == {0: 1}
    assert 'accuracy/top1' in _metrics(out)
