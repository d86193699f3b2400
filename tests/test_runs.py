"""Work dirs, resumes and divergence (figkd_mmrazor.runs and its hooks).

Each end-to-end test runs tools/train.py as a user would and asserts what is
on disk afterwards; the unit tests check the pieces against mmengine's own
parser and torch's loader.
"""
import json
import re
import shutil

import pytest
import torch
from mmengine.config import Config

from figkd_mmrazor import runs
from figkd_mmrazor.hooks import NonFiniteLossHook
from run_probes import run
from tiny import tiny_config, tiny_cub

FIGKD = 'configs/figkd/cub_r50_r18.py'
KD = 'configs/kd/cub_r50_r18.py'


# ---------------------------------------------------------------- pieces

def test_atomic_save_keeps_the_old_file_when_a_save_fails(tmp_path):
    path = tmp_path / 'student_epoch_1.pth'
    runs.atomic_save({'w': torch.ones(3)}, path)
    with pytest.raises(Exception):  # a lambda cannot be pickled
        runs.atomic_save({'w': torch.zeros(3), 'f': lambda: 0}, path)
    assert torch.equal(torch.load(path, weights_only=True)['w'],
                       torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_work_dir_is_held_by_one_run_until_it_ends(tmp_path):
    first = runs.lock_work_dir(str(tmp_path))
    with pytest.raises(runs.WorkDirError, match='in use by a running job'):
        runs.lock_work_dir(str(tmp_path))
    first.close()  # what the kernel does when the run's process ends
    runs.lock_work_dir(str(tmp_path)).close()


def test_start_over_moves_the_earlier_run_and_deletes_nothing(tmp_path):
    files = {'epoch_1.pth': b'1', 'last_checkpoint': b'x/epoch_1.pth',
             '20261128_000000/20261128_000000.log': b'log'}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    with pytest.raises(runs.WorkDirError, match='--start-over'):
        runs.check_fresh_start(str(tmp_path))
    moved = runs.set_aside(str(tmp_path))
    assert runs.checkpoints_in(str(tmp_path)) == []
    for name, data in files.items():
        assert (tmp_path / moved / name).read_bytes() == data
    runs.check_fresh_start(str(tmp_path))


@pytest.fixture(scope='module')
def tiny_cfg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cfg')
    return tiny_config(FIGKD, tiny_cub(tmp / 'cub'), tmp / 'figkd.py',
                       epochs=2)


def test_saved_config_is_read_as_mmengine_reads_it(tiny_cfg):
    text = Config.fromfile(tiny_cfg).pretty_text
    oracle = Config.fromstring(text, file_format='.py').to_dict()
    saved = runs.saved_config(text)
    assert set(runs.RESUME_SECTIONS) <= saved.keys()
    assert runs.config_differences(saved, oracle) == []
    assert runs.config_differences(oracle, saved) == []


def test_saved_config_with_code_is_refused_not_run(tmp_path):
    marker = tmp_path / 'ran'
    text = (f"model = dict(type='X')\n"
            f"x = __import__('os').system('touch {marker}')\n")
    with pytest.raises(ValueError, match='line 2'):
        runs.saved_config(text)
    assert not marker.exists()


def test_config_differences_name_what_changes_the_numbers(tiny_cfg):
    saved = Config.fromfile(tiny_cfg).to_dict()
    kd = Config.fromfile(tiny_config(KD, saved['train_dataloader'][
        'dataset']['data_root'], tiny_cfg.parent / 'kd.py', epochs=2))
    kd.train_dataloader.num_workers = 3  # does not change the numbers
    kd.optim_wrapper.optimizer.lr = 0.5
    keys = [key for key, _, _ in runs.config_differences(
        saved, kd.to_dict())]
    assert keys == ['model.distiller.distill_losses.loss_figkd',
                    'model.distiller.distill_losses.loss_kd',
                    'model.distiller.loss_forward_mappings.loss_figkd',
                    'model.distiller.loss_forward_mappings.loss_kd',
                    'optim_wrapper.optimizer.lr']


def test_checkpoint_with_non_finite_weights_is_not_saved():
    hook = NonFiniteLossHook()
    good = {'meta': {'epoch': 1, 'iter': 4},
            'state_dict': {'a': torch.ones(2), 'n': torch.tensor(3)}}
    hook.before_save_checkpoint(None, good)
    bad = {'meta': {'epoch': 2, 'iter': 8},
           'state_dict': {'a': torch.ones(2),
                          'architecture.head.fc.weight': torch.tensor(
                              [1.0, float('inf')])}}
    with pytest.raises(FloatingPointError,
                       match=r'architecture\.head\.fc\.weight.*epoch 2'):
        hook.before_save_checkpoint(None, bad)


# ------------------------------------------------------ end-to-end runs

def _contents(folder):
    """Every file's bytes (the lock file aside: it records who ran last)."""
    return {p.relative_to(folder): p.read_bytes()
            for p in sorted(folder.rglob('*'))
            if p.is_file() and p.name != runs.LOCK_FILE}


def _copy_run(work, to):
    """A copy of a finished run whose last_checkpoint points into it."""
    shutil.copytree(work, to)
    last = (work / 'last_checkpoint').read_text()
    (to / 'last_checkpoint').write_text(last.replace(str(work), str(to)))
    return to


def _lrs(work):
    """Learning rate by step, from every run logged in ``work``."""
    steps = {}
    for path in sorted(work.glob('*/vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if 'lr' in row:
                steps[row['step']] = row['lr']
    return steps


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """A 1-epoch and an uninterrupted 2-epoch FiGKD run of one config."""
    tmp = tmp_path_factory.mktemp('runs')
    cub = tiny_cub(tmp / 'cub')
    one = tiny_config(FIGKD, cub, tmp / 'figkd_1.py', epochs=1)
    two = tiny_config(FIGKD, cub, tmp / 'figkd_2.py', epochs=2)
    run('tools/train.py', one, '--work-dir', tmp / 'one')
    run('tools/train.py', two, '--work-dir', tmp / 'two')
    return dict(cub=cub, one=one, two=two, work_one=tmp / 'one',
                work_two=tmp / 'two')


def test_rerun_without_resume_refuses_and_start_over_keeps_the_old_run(
        finished, tmp_path):
    work = _copy_run(finished['work_one'], tmp_path / 'work')
    before = _contents(work)
    proc = run('tools/train.py', finished['one'], '--work-dir', work,
               check=False)
    assert proc.returncode != 0
    assert 'already holds checkpoints' in proc.stderr
    assert '--resume' in proc.stderr and '--start-over' in proc.stderr
    assert _contents(work) == before

    run('tools/train.py', finished['one'], '--work-dir', work,
        '--start-over')
    [previous] = (work / runs.PREVIOUS_RUNS).iterdir()
    for name, data in before.items():
        assert (previous / name).read_bytes() == data, name
    new = torch.load(work / 'epoch_1.pth', weights_only=False)
    assert new['meta']['epoch'] == 1
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')


def test_extending_max_epochs_continues_the_configured_schedule(
        finished, tmp_path):
    """1 epoch, then ``--resume PATH`` to 2 = one uninterrupted 2-epoch run:
    the same learning rate at every step of the extra epoch, the same
    weights. (``--resume`` alone is tested by the killed-run tests.)"""
    work = _copy_run(finished['work_one'], tmp_path / 'work')
    (work / 'last_checkpoint').unlink()  # only the path given can be used
    proc = run('tools/train.py', finished['one'], '--work-dir', work,
               '--resume', work / 'epoch_1.pth',
               '--cfg-options', 'train_cfg.max_epochs=2')
    log = proc.stdout + proc.stderr
    assert f'Load checkpoint from {work / "epoch_1.pth"}' in log
    assert 'resumed epoch: 1, iter: 4' in log
    assert 'Epoch(train) [1]' not in log and 'Epoch(train) [2][4/4]' in log
    assert 'train_cfg.max_epochs: 1 -> 2' in log
    plain, resumed = _lrs(finished['work_two']), _lrs(work)
    assert sorted(resumed) == sorted(plain) == list(range(1, 9))
    assert resumed == plain
    a = torch.load(finished['work_two'] / 'epoch_2.pth', weights_only=False)
    b = torch.load(work / 'epoch_2.pth', weights_only=False)
    assert b['meta']['epoch'] == 2 and b['meta']['iter'] == 8
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key


def test_resuming_a_figkd_run_with_the_kd_config_is_refused(
        finished, tmp_path):
    work = _copy_run(finished['work_one'], tmp_path / 'work')
    before = _contents(work)
    kd = tiny_config(KD, finished['cub'], tmp_path / 'kd.py', epochs=2)
    proc = run('tools/train.py', kd, '--work-dir', work, '--resume',
               check=False)
    assert proc.returncode != 0
    assert 'ResumeMismatchError' in proc.stderr
    assert 'model.distiller.distill_losses.loss_figkd' in proc.stderr
    assert 'model.distiller.distill_losses.loss_kd' in proc.stderr
    assert '--resume-with-changes' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    assert _contents(work) == before


def test_changed_schedule_on_resume_is_refused_unless_asked(
        finished, tmp_path):
    """A new param_scheduler would not take effect (mmengine restores the
    saved one), so it is refused; --resume-with-changes goes ahead."""
    work = _copy_run(finished['work_one'], tmp_path / 'work')
    change = ('train_cfg.max_epochs=2', 'param_scheduler.1.T_max=1')
    proc = run('tools/train.py', finished['one'], '--work-dir', work,
               '--resume', '--cfg-options', *change, check=False)
    assert proc.returncode != 0
    assert 'param_scheduler.1.T_max: 95 -> 1' in proc.stderr
    assert not (work / 'epoch_2.pth').exists()
    proc = run('tools/train.py', finished['one'], '--work-dir', work,
               '--resume', '--resume-with-changes', '--cfg-options', *change)
    assert 'Resuming with param_scheduler.1.T_max: 95 -> 1' in proc.stdout
    assert torch.load(work / 'epoch_2.pth',
                      weights_only=False)['meta']['epoch'] == 2


@pytest.mark.parametrize('recipe', ['kd', 'figkd'])
def test_diverged_run_stops_at_the_step_and_saves_nothing(recipe, tmp_path):
    """lr=1e6: the loss overflows within the first epoch. KD's loss
    (MMRazor's KLDivergence) has no finiteness check of its own, so the hook
    stops the run; FiGKDLoss refuses non-finite logits itself, and the train
    tool names the step."""
    config = KD if recipe == 'kd' else KD.replace('/kd/', '/figkd/')
    cfg = tiny_config(config, tiny_cub(tmp_path / 'cub'),
                      tmp_path / f'{recipe}.py', epochs=2)
    proc = run('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
               '--cfg-options', 'optim_wrapper.optimizer.lr=1e6',
               check=False)
    assert proc.returncode != 0
    assert 'NonFiniteLossError: Non-finite' in proc.stderr
    assert re.search(r'at Epoch\(train\) \[1\]', proc.stderr)
    if recipe == 'kd':
        assert 'distill.loss_kd=nan' in proc.stderr
        assert 'learning rate' in proc.stderr and '--amp' in proc.stderr
        assert 'teacher_ckpt' in proc.stderr
    else:
        assert 'iteration' in proc.stderr and 'logits' in proc.stderr
    assert list((tmp_path / 'work').glob('*.pth')) == []
    assert not (tmp_path / 'work' / 'last_checkpoint').exists()


def test_amp_on_a_machine_without_gpu_is_refused_before_the_runner(
        tiny_cfg, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is allowed')
    proc = run('tools/train.py', tiny_cfg, '--work-dir', tmp_path / 'work',
               '--amp', check=False)
    assert proc.returncode == 2
    assert '--amp needs a GPU' in proc.stderr
    assert not (tmp_path / 'work').exists()
