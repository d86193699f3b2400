"""The embedded demo: its configs and tools/demo_study.py end to end.

The study runs for real (every stage a tools/train.py process, the same code
paths as the full demo) on a 4-class copy of the demo dataset with one epoch
per stage, so the whole file takes about a minute on two cores.
"""
import importlib.util
import json

import pytest
from mmengine.config import Config
from PIL import Image

from figkd_mmrazor.demo import DemoSpec
from tiny import ROOT, run_tool, tiny_cub

STAGES = ('teacher', 'student', 'kd', 'dkd', 'figkd')
METHODS = ['Teacher', 'Student alone', 'KD', 'DKD', 'FiGKD']
DISTILL = ('kd', 'dkd', 'figkd')


def load_study():
    spec = importlib.util.spec_from_file_location(
        '_demo_study', ROOT / 'tools' / 'demo_study.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cfgs = {}


def cfg(name) -> Config:
    if name not in _cfgs:
        _cfgs[name] = Config.fromfile(ROOT / 'configs' / 'demo' / f'{name}.py')
    return _cfgs[name]


# ----------------------------------------------------------------- configs
def test_demo_configs_fit_the_default_dataset():
    spec = DemoSpec()
    for name in STAGES:
        c = cfg(name)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            ds = c[key].dataset
            assert ds.type == 'CUB' and ds.data_root == 'data/demo_cub'
            assert ds.classes == spec.class_names()
        assert c.val_dataloader.dataset.split == 'test'
        assert c.data_preprocessor.num_classes == spec.num_classes
        heads = ([c.model.architecture.head, c.model.teacher.head]
                 if name in DISTILL else [c.model.head])
        assert all(h.num_classes == spec.num_classes for h in heads)
        assert c.work_dir == f'./work_dirs/demo/{name}'


def test_students_differ_only_in_the_distillation_loss():
    base = cfg('student')
    teacher = cfg('teacher')
    for name in DISTILL:
        c = cfg(name)
        for key in ('train_dataloader', 'val_dataloader', 'data_preprocessor',
                    'optim_wrapper', 'param_scheduler', 'train_cfg',
                    'randomness'):
            assert c[key] == base[key], (name, key)
        assert c.model.architecture == base.model, name
        assert c.model.teacher == teacher.model, name
        # The loss is the real recipes' base, unchanged.
        recipe = Config.fromfile(
            ROOT / 'configs' / '_base_' / 'distill' / f'{name}.py')
        assert c.model.distiller == recipe.distiller, name
        assert c.val_cfg.type == 'mmrazor.SingleTeacherDistillValLoop'
        # The teacher run's last checkpoint.
        epochs = teacher.train_cfg.max_epochs
        assert c.model.teacher_ckpt == \
            f'work_dirs/demo/teacher/epoch_{epochs}.pth'
    # A bigger teacher than student.
    assert (teacher.model.backbone.base_channels
            > base.model.backbone.base_channels)


def test_epoch_options_keep_the_cosine_consistent():
    study = load_study()
    c = cfg('student')
    for epochs in (1, 2, 7):
        opts = dict(o.split('=') for o in study.epoch_options(epochs))
        assert int(opts['train_cfg.max_epochs']) == epochs
        assert int(opts['train_cfg.val_interval']) == epochs
        assert int(opts['param_scheduler.1.end']) > 1  # after the warm-up
    # The config's own numbers follow the same rule.
    opts = dict(o.split('=') for o in study.epoch_options(
        c.train_cfg.max_epochs))
    assert int(opts['param_scheduler.1.T_max']) == c.param_scheduler[1].T_max
    assert int(opts['param_scheduler.1.end']) == c.param_scheduler[1].end


# -------------------------------------------------------------- the study
@pytest.fixture(scope='module')
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo_study')
    data = tiny_cub(tmp / 'cub')  # 4 classes, 16 train + 8 test images
    work = tmp / 'work'
    args = ('tools/demo_study.py', '--work-dir', work, '--data-root', data,
            '--epochs', '1', '--teacher-epochs', '1', '--seed', '3')
    proc = run_tool(*args)
    return args, proc, work


def test_study_runs_every_stage_and_prints_the_table(study):
    _, proc, work = study
    out = proc.stdout
    for i in range(1, 7):
        assert f'[{i}/6]' in out
    # The distillation runs used the teacher run's checkpoint and the losses.
    for name in DISTILL:
        record = json.loads((work / name / 'demo_stage.json').read_text())
        ckpt = [o for o in record['settings']['options']
                if o.startswith('model.teacher_ckpt=')]
        assert ckpt == [f'model.teacher_ckpt={work}/teacher/epoch_1.pth']
        log = next((work / name).glob('*/*.log')).read_text()
        assert f'distill.loss_{name}' in log
        # The frozen teacher scores what it scored in its own run.
        assert record['teacher_top1'] == pytest.approx(
            json.loads((work / 'teacher' / 'demo_stage.json').read_text())
            ['top1'])
    table = out[out.index('| Method |'):]
    for method in METHODS:
        assert f'| {method} |' in table


def test_study_writes_markdown_json_and_png(study):
    _, _, work = study
    result = json.loads((work / 'results.json').read_text())
    assert [r['method'] for r in result['rows']] == METHODS
    for row in result['rows']:
        assert 0 <= row['top1'] <= 100
    assert result['seed'] == 3 and result['dataset']['num_classes'] == 4
    md = (work / 'results.md').read_text()
    assert sum(line.startswith(f'| {m} |') for m in METHODS
               for line in md.splitlines()) == len(METHODS)
    with Image.open(work / 'results.png') as png:
        assert png.format == 'PNG' and png.size[0] > 300


def test_skip_existing_reuses_the_finished_stages(study):
    args, _, work = study
    before = json.loads((work / 'results.json').read_text())['rows']
    proc = run_tool(*args, '--skip-existing')
    assert proc.stdout.count('(--skip-existing)') == len(STAGES)
    assert 'tools/train.py' not in proc.stdout
    after = json.loads((work / 'results.json').read_text())['rows']
    assert [r['top1'] for r in after] == [r['top1'] for r in before]
