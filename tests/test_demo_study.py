"""The embedded demo: its configs, and tools/demo_study.py end to end.

The study runs for real (every run a tools/train.py process, teacher
recorded once and replayed) on a 10-class glyph benchmark (the A family),
two epochs (one iteration each) per student, two seeds, two runs at a time.
Its table is checked against what each run logged, read here independently
of the package.
"""
import json
import random
import re
import sys

import numpy as np
import pytest
import scipy.stats
import torch
from mmengine.config import Config
from PIL import Image

from figkd_mmrazor.checkpoints import (load_checkpoint,
                                       split_distillation_state,
                                       state_dict_of)
from figkd_mmrazor.glyphs import CLASS_NAMES, GlyphSpec
from tiny import ROOT, TINY_GLYPHS as TINY, run_tool, tiny_glyphs

STAGES = ('teacher', 'student', 'kd', 'dkd', 'figkd')
RECIPES = ('student', 'kd', 'dkd', 'figkd', 'figkd_shuffled', 'figkd_graph')
DISTILL = ('kd', 'dkd', 'figkd', 'figkd_shuffled', 'figkd_graph')
CONFIG_OF = dict(zip(RECIPES, RECIPES[:4] + ('figkd', 'figkd')))
SEEDS = (3, 4)

_cfgs = {}


def cfg(name) -> Config:
    if name not in _cfgs:
        _cfgs[name] = Config.fromfile(ROOT / 'configs' / 'demo' / f'{name}.py')
    return _cfgs[name]


# ----------------------------------------------------------------- configs
    return _cfgs[name]


# ----------------------------------------------------------------- configs
def test_demo_configs_fit_the_default_dataset():
    spec = GlyphSpec()
    for name in STAGES:
        c = cfg(name)
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            ds = c[key].dataset
            assert ds.type == 'CUB' and ds.data_root == 'data/glyphs'
            assert ds.classes == f'data/glyphs/{CLASS_NAMES}'
        assert c.val_dataloader.dataset.split == 'test'
        assert c.data_preprocessor.num_classes == spec.num_classes
        heads = ([c.model.architecture.head, c.model.teacher.head]
                 if name in DISTILL else [c.model.head])
        assert all(h.num_classes == spec.num_classes for h in heads)
        assert c.work_dir == f'./work_dirs/demo/{name}'


def test_students_differ_only_in_the_distillation_loss():
    base = cfg('student')
    teacher = cfg('teacher')
    for name in STAGES[2:]:
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


# -------------------------------------------------------------- the study
def logged(work_dir):
    """(final top-1, teacher top-1, training losses) as the run logged
    them in its scalars.json files."""
    records = [json.loads(line)
               for path in sorted(work_dir.glob('*/vis_data/scalars.json'))
               for line in path.read_text().splitlines() if line.strip()]
    val = [r for r in records if 'accuracy/top1' in r]
    return (val[-1]['accuracy/top1'], val[-1].get('teacher.accuracy/top1'),
            [r['loss'] for r in records if 'loss' in r])


def tiny_options(data):
    """The cfg-options that point a demo config at the tiny dataset with a
    one-epoch schedule (what demo_study passes, written out here)."""
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data}',
                 f'{loader}.dataset.classes={data / CLASS_NAMES}']
    return opts + [f'data_preprocessor.num_classes={TINY.num_classes}',
                   'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
                   'param_scheduler.1.T_max=1', 'param_scheduler.1.end=2']


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('demo_study')
    data = tiny_glyphs(tmp / 'glyphs')
    work = tmp / 'work'
    args = ('tools/demo_study.py', '--work-dir', work, '--data-root', data,
            '--epochs', '2', '--teacher-epochs', '1', '--jobs', '2',
            '--seeds', *map(str, SEEDS), '--recipes', *RECIPES)
    proc = run_tool(*args, timeout=1800)  # 13 runs, each a new process
    return args, proc, work, data


def test_study_table_is_its_runs_results(study):
    _, proc, work, _ = study
    top1 = {(r, s): logged(work / r / f'seed_{s}')[0]
            for r in RECIPES for s in SEEDS}
    result = json.loads((work / 'comparison.json').read_text())
    assert result['reference'] == 'kd' and result['seeds'] == list(SEEDS)
    assert [row['recipe'] for row in result['recipes']] == list(RECIPES)
    kd = [top1['kd', s] for s in SEEDS]
    for row in result['recipes']:
        values = [top1[row['recipe'], s] for s in SEEDS]
        assert row['top1'] == {str(s): v for s, v in zip(SEEDS, values)}
        assert row['mean'] == pytest.approx(np.mean(values))
        assert row['std'] == pytest.approx(np.std(values, ddof=1))
        line = (f"| {row['recipe']} | 2 | {np.mean(values):.2f} +- "
                f'{np.std(values, ddof=1):.2f} |')
        assert line in proc.stdout
        if row['recipe'] == 'kd':
            continue
        diff = np.subtract(values, kd)
        paired = row['vs_reference']
        assert paired['mean'] == pytest.approx(diff.mean())
        assert paired['ahead'] == int((diff > 0).sum())
        if diff.std() > 0:
            ci = scipy.stats.ttest_rel(values, kd).confidence_interval()
            assert (paired['low'], paired['high']) == pytest.approx(
                (ci.low, ci.high))
    # The teacher's own run, and the frozen teacher inside each replay.
    teacher_top1 = logged(work / 'teacher')[0]
    assert result['meta']['teacher_top1'] == teacher_top1
    for r in DISTILL:
        for s in SEEDS:
            assert logged(work / r / f'seed_{s}')[1] == teacher_top1
    for key in ('command', 'date', 'machine', 'versions', 'wall_s'):
        assert result['meta'][key]
    md = (work / 'comparison.md').read_text()
    assert all(f'| {r} |' in md for r in RECIPES)
    with Image.open(work / 'comparison.png') as png:
        assert png.format == 'PNG' and png.size[0] > 300


def test_study_records_the_teacher_once_and_replays_it(study):
    _, _, work, _ = study
    caches = list((work / 'teacher_cache').iterdir())
    assert len(caches) == 1
    manifest = json.loads((caches[0] / 'manifest.json').read_text())
    assert manifest['recorded_by']['work_dir'] == str(work / 'kd' / 'seed_3')
    # Every run, the student alone too, sees the cache's keyed views.
    for r in RECIPES:
        saved = Config.fromfile(work / r / 'seed_3' / f'{CONFIG_OF[r]}.py')
        assert saved.train_dataloader.dataset.type == 'KeyedAugmentDataset'
        assert saved.train_dataloader.dataset.data_seed == 0
    modes = sorted(re.search(r'Teacher cache: (\w+)', (
        work / 'logs' / f'{r}_seed_{s}.log').read_text()).group(1)
        for r in DISTILL for s in SEEDS)
    assert modes == ['record'] + ['replay'] * (len(DISTILL) * len(SEEDS) - 1)
    for r in DISTILL:
        saved = Config.fromfile(work / r / 'seed_3' / f'{CONFIG_OF[r]}.py')
        assert saved.model.teacher_ckpt == str(work / 'teacher' /
                                               'epoch_1.pth')
        assert saved.train_cfg.max_epochs == 2
        assert saved.param_scheduler[1].T_max == 1  # after the warm-up
        assert saved.param_scheduler[1].end == 2
        assert saved.randomness.seed == 3
        log = next((work / r / 'seed_3').glob('*/*.log')).read_text()
        assert f'distill.loss_{CONFIG_OF[r]}' in log


def test_control_is_figkd_with_one_shuffled_order_per_seed(study):
    _, _, work, _ = study
    loss = {(r, s): Config.fromfile(work / r / f'seed_{s}' / 'figkd.py')
            .model.distiller.distill_losses.loss_figkd
            for r in ('figkd', 'figkd_shuffled') for s in SEEDS}
    orders = [loss['figkd_shuffled', s].class_order for s in SEEDS]
    for seed, order in zip(SEEDS, orders):
        assert sorted(order) == list(range(TINY.num_classes))
        expected = list(range(TINY.num_classes))
        random.Random(seed).shuffle(expected)
        assert order == expected
    assert orders[0] != orders[1] != list(range(TINY.num_classes))
    for s in SEEDS:
        assert loss['figkd', s].get('class_order') is None
        # Nothing else differs from FiGKD.
        assert {k: v for k, v in loss['figkd_shuffled', s].items()
                if k != 'class_order'} == \
            {k: v for k, v in loss['figkd', s].items() if k != 'class_order'}
    # Same data, seed and teacher views; the order changes what is learnt.
    assert logged(work / 'figkd' / 'seed_3')[2][0] != \
        logged(work / 'figkd_shuffled' / 'seed_3')[2][0]


def test_study_flag_sets_the_study_defaults_and_options_win(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / 'tools'))
    import demo_study
    monkeypatch.setattr(sys, 'argv', ['demo_study.py', '--study'])
    args = demo_study.parse_args()
    for key, value in demo_study.STUDY.items():
        assert getattr(args, key) == value
    assert 'figkd_shuffled' in args.recipes
    monkeypatch.setattr(sys, 'argv', ['demo_study.py', '--study',
                                      '--seeds', '7', '--recipes', 'dkd'])
    args = demo_study.parse_args()
    assert args.seeds == [7] and args.recipes == ['kd', 'dkd']
    assert args.reference == 'kd'
    monkeypatch.setattr(sys, 'argv', ['demo_study.py', '--study',
                                      '--recipes', 'dkd',
                                      '--reference', 'figkd'])
    args = demo_study.parse_args()
    assert args.recipes == ['figkd', 'dkd'] and args.reference == 'figkd'
    assert args.work_dir == demo_study.STUDY['work_dir']
    monkeypatch.setattr(sys, 'argv', ['demo_study.py'])
    args = demo_study.parse_args()
    assert 'figkd_shuffled' not in args.recipes
    assert args.work_dir == 'work_dirs/demo' and args.seeds == [0, 1, 2]


def test_rerun_reuses_every_run(study):
    args, _, work, _ = study
    before = json.loads((work / 'comparison.json').read_text())['recipes']
    stamps = sorted(work.glob('*/seed_*/2*'))
    proc = run_tool(*args, timeout=1800)
    assert proc.stdout.count('(reused)') == 1 + len(RECIPES) * len(SEEDS)
    assert sorted(work.glob('*/seed_*/2*')) == stamps  # nothing trained
    after = json.loads((work / 'comparison.json').read_text())['recipes']
    assert [r['top1'] for r in after] == [r['top1'] for r in before]
    # Paired with another reference, from the same runs.
    proc = run_tool(*args, '--reference', 'figkd', timeout=1800)
    assert sorted(work.glob('*/seed_*/2*')) == stamps
    report = json.loads((work / 'comparison.json').read_text())
    assert report['reference'] == 'figkd'
    kd = next(r for r in report['recipes'] if r['recipe'] == 'kd')
    figkd = next(r for r in before if r['recipe'] == 'figkd')
    assert kd['vs_reference']['mean'] == pytest.approx(
        -figkd['vs_reference']['mean'])


def test_same_seed_again_gives_identical_losses_and_top1(study, tmp_path):
    """The claim 'a rerun with the same seed gives the same top-1', under
    the demo's conditions: deterministic=False, random crop, two
    runs at a time with one thread each; here by compare_recipes.py in
    another work dir and with --no-replay, so it also shows that a
    comparison without replay trains the same runs as one with it (the
    study recorded KD seed 3 and replayed FiGKD seed 3; here both compute
    their teacher live)."""
    _, _, work, data = study
    opts = tiny_options(data) + [
        f'model.teacher_ckpt={work}/teacher/epoch_1.pth',
        f'model.architecture.head.num_classes={TINY.num_classes}',
        f'model.teacher.head.num_classes={TINY.num_classes}']
    proc = run_tool('tools/analysis/compare_recipes.py',
                    'configs/demo/kd.py', 'configs/demo/figkd.py',
                    '--seeds', '3', '--jobs', '2', '--work-dir', tmp_path,
                    '--no-replay', '--cfg-options', *opts, timeout=1800)
    assert not (tmp_path / 'teacher_cache').exists()
    for recipe in ('kd', 'figkd'):
        log = (tmp_path / 'logs' / f'demo_{recipe}_seed_3.log').read_text()
        assert 'Teacher cache:' not in log
    for recipe in ('kd', 'figkd'):
        again = logged(tmp_path / 'demo' / recipe / 'seed_3')
        first = logged(work / recipe / 'seed_3')
        assert again[2] == first[2] and len(first[2]) == 2  # every loss
        assert again[0] == first[0]
        weights = [split_distillation_state(state_dict_of(load_checkpoint(
            str(d / recipe / 'seed_3' / 'epoch_2.pth'))))[0]
            for d in (work, tmp_path / 'demo')]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][k], weights[1][k])
                   for k in weights[0])
    report = json.loads((tmp_path / 'comparison.json').read_text())
    assert [r['top1'] for r in report['recipes']] == [
        {'3': logged(work / r / 'seed_3')[0]} for r in ('kd', 'figkd')]
    assert 'python tools/analysis/compare_recipes.py' in \
        report['meta']['command']
    assert '| demo/figkd | 1 |' in proc.stdout


def test_variant_recipes_set_what_they_say(monkeypatch, tmp_path):
    """The class-axis variants: each one's options on its config build the
    loss they name; the teacher's order is spectral seriation of its
    classifier rows, and finds an order planted in them."""
    from mmrazor.registry import MODELS

    from figkd_mmrazor import class_axis
    from figkd_mmrazor.analysis import class_order, comparison
    monkeypatch.syspath_prepend(str(ROOT / 'tools'))
    import demo_study
    rng = np.random.default_rng(0)
    hidden = rng.permutation(12)
    # Rows that drift smoothly along the hidden order: neighbours alike.
    steps = np.cumsum(rng.normal(size=(12, 16)), axis=0)
    weight = torch.from_numpy(steps[np.argsort(hidden)])
    ckpt = tmp_path / 'teacher.pth'
    torch.save(dict(state_dict={'head.fc.weight': weight}), ckpt)

    def loss(recipe):
        c = Config.fromfile(ROOT / 'configs' / 'demo' /
                            f'{demo_study.CONFIG_OF[recipe]}.py')
        c.merge_from_dict(comparison.parse_cfg_options(
            demo_study.recipe_options(recipe, 0, 12)))
        c.model.teacher_ckpt = str(ckpt)
        class_axis.apply_to_config(c)
        name, = c.model.distiller.distill_losses
        return MODELS.build(c.model.distiller.distill_losses[name])

    assert loss('kd_tau6').tau == 6.0
    std = loss('kd_std')
    assert (std.low_weight, std.high_weights, std.tau, std.standardize) == \
        (1.0, [1.0], 2.0, True)
    soft = loss('figkd_soft_detail')
    assert (soft.low_weight, soft.high_weights) == (1.0, [0.5])
    std = loss('figkd_std')
    assert (std.low_weight, std.high_weights, std.tau, std.standardize) == \
        (0.0, [1.0], 2.0, True)
    order = loss('figkd_teacher_order').class_order.tolist()
    assert order == class_order.spectral_order(
        class_order.cosine_similarity_matrix(weight.numpy(), center=True))
    neighbours = [abs(int(np.argsort(hidden)[a]) - int(np.argsort(hidden)[b]))
                  for a, b in zip(order[:-1], order[1:])]
    assert np.mean(neighbours) < 2.5  # a random order: about 4.3
    graph = loss('figkd_graph')
    assert type(graph).__name__ == 'GraphFiGKDLoss'
    np.testing.assert_allclose(graph.class_graph, class_order.
                               cosine_similarity_matrix(weight.numpy(),
                                                        center=True),
                               atol=1e-11)
    assert (graph.low_bands, graph.low_weight) == (6, 0.0)
    assert demo_study.recipe_options('figkd', 0, 12) == []
