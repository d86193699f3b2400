"""figkd_mmrazor.analysis and the tools/analysis command lines over it.

Package functions are imported; tools are run as a user runs them
(``tiny.run_tool``), never imported.
"""
import json
import math
import os
import statistics

import numpy as np
import pytest
import pywt
import scipy.stats
import torch

from figkd_mmrazor.analysis import class_order as co
from figkd_mmrazor.analysis import comparison
from figkd_mmrazor.analysis import logit_spectrum as ls
from figkd_mmrazor.analysis.paired import paired_difference, summarize
from figkd_mmrazor.losses import FiGKDLoss
from tiny import ROOT, run_tool, save_random_teacher


# ------------------------------------------------------------ spectrum
@pytest.mark.parametrize('wavelet', ['haar', 'db2', 'sym4'])
@pytest.mark.parametrize('level', [1, 2, 3])
def test_band_energies_parseval_and_pywt(wavelet, level):
    rng = np.random.default_rng(level)
    logits = rng.normal(0, 3, (6, 64)) + 2.0  # a shift lands in cA_n
    energy = ls.band_energies(logits, wavelet, level, 'periodization')
    assert energy.shape == (level + 1, )
    total = (logits**2).sum(1).mean()
    assert energy.sum() == pytest.approx(total, rel=1e-9)
    coeffs = pywt.wavedec(logits, wavelet, mode='periodization', level=level,
                          axis=-1)
    expected = [np.mean(np.sum(c**2, axis=1)) for c in coeffs]
    np.testing.assert_allclose(energy, expected, rtol=1e-9)


def test_band_agreement_identical_and_scaled():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(5, 32))
    for wavelet, level in (('haar', 3), ('db2', 2)):
        cos = ls.band_agreement(t, t, wavelet, level)
        np.testing.assert_allclose(cos, 1.0, atol=1e-12)
        np.testing.assert_allclose(ls.band_agreement(3 * t, t, wavelet,
                                                     level), 1.0, atol=1e-12)
        err = ls.band_agreement(t, t, wavelet, level, metric='rel_error')
        np.testing.assert_allclose(err, 0.0, atol=1e-12)
    # Constant logits, centred: every band is zero in both; counts as equal.
    flat = torch.full((2, 16), 4.0)
    np.testing.assert_allclose(
        ls.band_agreement(flat, flat, 'haar', 2, center=True), 1.0)
    assert ls.band_agreement(-t, t, 'haar', 1)[1] == pytest.approx(-1.0)


def test_spectrum_report_table_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    t = rng.normal(size=(8, 16))
    s = t + 0.1 * rng.normal(size=(8, 16))
    report = ls.spectrum_report(t, s, 'haar', 2)
    assert [b['name'] for b in report['bands']] == ['cA2', 'cD2', 'cD1']
    assert [b['length'] for b in report['bands']] == [4, 4, 8]
    for who in ('teacher', 'student'):
        assert sum(b[f'{who}_fraction'] for b in report['bands']) == \
            pytest.approx(1.0)
        assert sum(b[f'{who}_energy'] for b in report['bands']) == \
            pytest.approx(report['total_energy'][who])
    assert all(0.9 < b['cosine'] <= 1 for b in report['bands'])
    table = ls.format_spectrum_table(report)
    assert table.count('\n| c') == 3 and 'cosine' in table
    json.dumps(report)
    png = ls.plot_spectrum(report, str(tmp_path / 'spectrum.png'))
    assert open(png, 'rb').read(4) == b'\x89PNG'
    teacher_only = ls.spectrum_report(t, None, 'db2', 1)
    assert 'cosine' not in teacher_only['bands'][0]
    ls.plot_spectrum(teacher_only, str(tmp_path / 'teacher.png'))


# --------------------------------------------------------- class order
def planted(n_classes=12, sizes=(4, 4, 4), dim=24, noise=0.15, seed=0):
    """Classifier rows of 3 clusters, classes shuffled: (weight, cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    cluster = np.repeat(np.arange(len(sizes)), sizes)
    cluster = cluster[rng.permutation(n_classes)]
    weight = centres[cluster] + noise * rng.normal(size=(n_classes, dim))
    return weight, cluster


def assert_clusters_contiguous(order, cluster):
    assert sorted(order) == list(range(len(cluster)))
    position = {c: i for i, c in enumerate(order)}
    for k in set(cluster.tolist()):
        pos = sorted(position[c] for c in np.flatnonzero(cluster == k))
        assert pos[-1] - pos[0] == len(pos) - 1, (k, order, cluster)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_order_from_classifier_weights_groups_planted_clusters(seed):
    weight, cluster = planted(seed=seed)
    assert list(cluster) != sorted(cluster)  # really shuffled
    order = co.order_from_classifier_weights(weight)
    assert_clusters_contiguous(order, cluster)
    # A shared offset in every row (softmax-invariant) does not matter.
    shifted = co.order_from_classifier_weights(weight + 5.0)
    assert_clusters_contiguous(shifted, cluster)
    # Torch weights work as well.
    assert co.order_from_classifier_weights(torch.tensor(weight)) == order


def test_order_from_similarity_and_confusion_planted_blocks():
    _, cluster = planted(seed=3)
    same = cluster[:, None] == cluster[None, :]
    rng = np.random.default_rng(3)
    noise = rng.uniform(0, 0.1, same.shape)
    sim = np.where(same, 0.8, 0.1) + (noise + noise.T) / 2
    np.fill_diagonal(sim, 1.0)
    order = co.order_from_similarity(sim)
    assert_clusters_contiguous(order, cluster)
    assert co.neighbour_similarity(sim, order) > co.neighbour_similarity(
        sim, range(12))
    # Confusion: each class confused mostly within its cluster.
    conf = np.where(same, 5.0, 0.2) + rng.uniform(0, 0.5, same.shape)
    np.fill_diagonal(conf, 40.0)
    assert_clusters_contiguous(co.order_from_confusion(conf), cluster)
    # Soft confusion from logits: one row per image, probabilities summed.
    logits = np.log(conf / conf.sum(1, keepdims=True))
    soft = co.confusion_matrix(logits, np.arange(12), kind='soft')
    np.testing.assert_allclose(soft.sum(1), 1.0)
    hard = co.confusion_matrix(logits, np.arange(12), kind='hard')
    assert hard.trace() == 12
    assert co.order_from_similarity(np.ones((2, 2))) == [0, 1]


def test_class_order_tool_writes_an_order_figkd_loss_reads(tmp_path):
    weight, cluster = planted(seed=4)
    state = {'backbone.conv1.weight': torch.zeros(4, 3, 3, 3),
             'head.fc.weight': torch.tensor(weight, dtype=torch.float32),
             'head.fc.bias': torch.zeros(12)}
    student = dict(state, **{'head.fc.weight': torch.randn(12, 24)})
    ckpt = tmp_path / 'distill.pth'  # the teacher's order must be taken
    torch.save({'state_dict': {
        **{f'teacher.{k}': v for k, v in state.items()},
        **{f'architecture.{k}': v for k, v in student.items()}}}, ckpt)
    out = tmp_path / 'order.json'
    proc = run_tool('tools/analysis/class_order.py',
                    'configs/demo/teacher.py', ckpt, '--out', out)
    data = json.loads(out.read_text())
    assert f'class_order={data["class_order"]}' in proc.stdout
    assert data['method'] == 'weights' and data['source'] == str(ckpt)
    assert_clusters_contiguous(data['class_order'], cluster)

    loss = FiGKDLoss(class_order=str(out), level=2)
    assert loss.class_order.tolist() == data['class_order']
    s, t = torch.randn(3, 12), torch.randn(3, 12)
    order = torch.tensor(data['class_order'])
    expected = FiGKDLoss(level=2)(s[:, order], t[:, order])
    assert torch.allclose(loss(s, t), expected)


def test_train_split_views_repeat_whatever_the_workers(tmp_path):
    """The train split of the analysis tools (``class_order.py --method
    confusion --split train``) keeps the random crops and flips, keyed:
    every call sees the same images, whatever the global generators and the
    workers, so a derived class order repeats."""
    import random

    from mmengine.config import Config

    from figkd_mmrazor.analysis.classifier_logits import build_loader
    from tiny import AUGMENTED, tiny_cub
    data = tiny_cub(tmp_path / 'cub')
    cfg = Config.fromfile(ROOT / 'configs/demo/teacher.py')
    cfg.train_dataloader.update(batch_size=4, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(data),
                                        pipeline=AUGMENTED)
    del cfg.train_dataloader.dataset['classes']  # the glyphs' file

    def images(num_workers=0, data_seed=0, seed=0):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        loader = build_loader(cfg, 'train', num_workers=num_workers,
                              data_seed=data_seed)
        return torch.cat([torch.stack(batch['inputs']) for batch in loader])

    first = images()
    assert first.shape == (16, 3, 32, 32)  # 4 classes x 4, in file order
    assert torch.equal(images(seed=1), first)
    assert torch.equal(images(num_workers=2, seed=2), first)
    # Still augmented: another data seed gives other views.
    assert not torch.equal(images(data_seed=1), first)


def test_read_class_families_of_a_demo_dataset(tmp_path):
    from figkd_mmrazor.demo import make_demo_cub
    root = make_demo_cub(tmp_path / 'cub', families=3, species_per_family=2,
                         train_per_class=1, test_per_class=1, progress=False)
    families = co.read_class_families(root)
    assert families == [1, 1, 2, 2, 3, 3]
    assert co.group_adjacency(range(6), families) == pytest.approx(3 / 5)
    assert co.group_adjacency([0, 2, 4, 1, 3, 5], families) == 0.0
    assert co.read_class_families(tmp_path) is None
    with pytest.raises(ValueError, match='not a permutation'):
        co.write_class_order(tmp_path / 'o.json', [0, 0, 1], 'x', 'y')


# ------------------------------------------------------------ benchmark
def test_benchmark_step_tiny_runs_and_prints_ratios(tmp_path):
    config = ('configs/demo/figkd.py' if (ROOT / 'configs/demo/figkd.py')
              .is_file() else 'configs/figkd/cub_r50_r18.py')
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark_step.py', '--config', config,
                    '--size', '32', '--batch', '2', '--steps', '2',
                    '--warmup', '1', '--threads', '1', '--num-classes', '16',
                    '--figkd', 'haar:1', 'db2:2', 'sym8:3', '--methods',
                    'student', 'kd', 'dkd', 'figkd', 'standardize', 'graph',
                    'ordered', '--json', out)
    text = proc.stdout
    assert '| method | median ms | p25-p75 ms | x KD |' in text
    for label in ('student (CE)', 'KD', 'DKD', 'FiGKD haar L1',
                  'FiGKD db2 L2', 'FiGKD haar L1 standardized',
                  'FiGKD graph', 'FiGKD haar L1, class order'):
        assert f'| {label} |' in text
    assert '| KD | ' in text and ' | 1.000 |' in text
    result = json.loads(out.read_text())
    assert len(result['rows']) == 8
    assert all(math.isfinite(r['loss']) for r in result['rows'])
    assert any('sym8' in s for s in result['skipped'])  # too deep for 16


# ------------------------------------------------------ paired statistics
def test_paired_interval_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a = rng.normal(35, 4, 7)
    b = a - rng.normal(1.0, 2.0, 7)
    # Seeds as keys, in another order in each mapping, plus a seed that
    # only one recipe finished: it must not be paired.
    values = {seed: a[seed] for seed in (3, 0, 6, 1, 5, 2, 4)}
    reference = {seed: b[seed] for seed in range(7)}
    reference[9] = 99.0
    for confidence in (0.95, 0.9):
        d = paired_difference(values, reference, confidence)
        oracle = scipy.stats.ttest_rel(a, b).confidence_interval(confidence)
        assert d['low'] == pytest.approx(oracle.low, rel=1e-12)
        assert d['high'] == pytest.approx(oracle.high, rel=1e-12)
    assert d['n'] == 7 and d['seeds'] == list(range(7))
    assert d['mean'] == pytest.approx(np.mean(a - b), rel=1e-12)
    assert d['std'] == pytest.approx(np.std(a - b, ddof=1), rel=1e-12)
    assert d['ahead'] == int(np.sum(a > b))
    assert d['ahead'] + d['behind'] + d['tied'] == 7


def test_paired_difference_edge_cases():
    one = paired_difference({0: 40.0}, {0: 38.5})
    assert one['n'] == 1 and one['mean'] == 1.5 and one['ahead'] == 1
    assert math.isnan(one['std']) and math.isnan(one['low'])
    none = paired_difference({0: 40.0}, {1: 38.5})
    assert none['n'] == 0 and math.isnan(none['mean'])
    tied = paired_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 1.0})
    assert (tied['ahead'], tied['behind'], tied['tied']) == (1, 0, 1)
    with pytest.raises(ValueError, match='confidence'):
        paired_difference({0: 1.0}, {0: 1.0}, confidence=95)
    s = summarize([31.4, 36.8, 31.6])
    assert s['mean'] == pytest.approx(statistics.fmean([31.4, 36.8, 31.6]))
    assert s['std'] == pytest.approx(np.std([31.4, 36.8, 31.6], ddof=1))
    assert (s['n'], s['min'], s['max']) == (3, 31.4, 36.8)


# ------------------------------------------------------------ comparison
def fake_results():
    rows = []
    for recipe, values in (('kd/x', [66.0, 68.0, 61.0]),
                           ('figkd/x', [70.0, None, 60.0]),
                           ('student/x', [60.0, 62.0, 64.0])):
        for seed, value in zip((0, 1, 2), values):
            rows.append(dict(recipe=recipe, config=f'configs/{recipe}.py',
                             seed=seed, work_dir=f'w/{recipe}/seed_{seed}',
                             status='done' if value is not None else 'failed',
                             teacher=None, top1=value, teacher_top1=None,
                             wall_s=1.0))
    return rows


def test_summary_report_values_and_files(tmp_path):
    summary = comparison.summarize(fake_results())
    assert summary['reference'] == 'kd/x' and summary['seeds'] == [0, 1, 2]
    kd, figkd, student = summary['recipes']
    assert 'vs_reference' not in kd
    assert figkd['n'] == 2 and figkd['mean'] == 65.0
    assert figkd['vs_reference']['seeds'] == [0, 2]  # seed 1 failed
    assert figkd['vs_reference']['mean'] == pytest.approx(1.5)
    assert student['vs_reference']['mean'] == pytest.approx(-3.0)
    assert student['vs_reference']['ahead'] == 1
    assert summary['missing'] == [dict(recipe='figkd/x', seed=1,
                                       status='failed', error=None)]
    # Another reference, by name.
    other = comparison.summarize(fake_results(), reference='student/x')
    assert other['recipes'][0]['vs_reference']['mean'] == pytest.approx(3.0)
    with pytest.raises(comparison.ComparisonError, match='not one of'):
        comparison.summarize(fake_results(), reference='dkd/x')

    table = comparison.format_table(summary)
    assert '| kd/x | 3 | 65.00 +- 3.61 | 61.0 - 68.0 | reference |' in table
    ci = scipy.stats.ttest_rel([60, 62, 64],
                               [66, 68, 61]).confidence_interval()
    assert (f'| student/x | 3 | 62.00 +- 2.00 | 60.0 - 64.0 | -3.00 '
            f'[{ci.low:+.2f}, {ci.high:+.2f}], ahead on 1 of 3 |') in table
    meta = comparison.report_meta('python tools/x.py --seeds 0 1 2', 12.0)
    paths = comparison.write_report(summary, meta, tmp_path)
    data = json.loads(open(paths['json']).read())  # strict JSON: no NaN
    assert data['meta']['command'] == 'python tools/x.py --seeds 0 1 2'
    assert data['meta']['date'].startswith('20')
    assert 'CPU cores' in data['meta']['machine']
    assert set(data['meta']['versions']) >= {'torch', 'mmengine', 'mmrazor'}
    assert data['recipes'][1]['top1'] == {'0': 70.0, '2': 60.0}
    md = open(paths['md']).read()
    assert table in md and 'missing: figkd/x seed 1' in md
    assert '| figkd/x | 70.00 | - | 60.00 |' in md
    assert open(paths['png'], 'rb').read(4) == b'\x89PNG'


def test_plan_runs_names_work_dirs_and_refusals(tmp_path):
    configs = ['configs/demo/kd.py', 'configs/demo/figkd.py']
    runs = comparison.plan_runs([str(ROOT / c) for c in configs], [4, 1],
                                tmp_path, ['train_cfg.max_epochs=2'],
                                replay=False)
    assert [(r.recipe, r.seed) for r in runs] == [
        ('demo/kd', 4), ('demo/kd', 1), ('demo/figkd', 4),
        ('demo/figkd', 1)]
    assert runs[1].work_dir == str(tmp_path / 'demo' / 'kd' / 'seed_1')
    # Without a cache a run still gets the cache's keyed augmentation.
    assert runs[1].cfg_options == ['randomness.seed=1',
                                   'train_cfg.max_epochs=2',
                                   'keyed_augmentation.data_seed=0']
    assert comparison.recipe_name(str(tmp_path / 'mine.py')) == 'mine'
    with pytest.raises(comparison.ComparisonError, match='repeats'):
        comparison.plan_runs([str(ROOT / configs[0])], [1, 1], tmp_path)
    with pytest.raises(comparison.ComparisonError, match='same recipe'):
        comparison.plan_runs([str(ROOT / configs[0])] * 2, [1], tmp_path)
    with pytest.raises(comparison.ComparisonError, match='does not exist'):
        comparison.plan_runs(['configs/nope.py'], [1], tmp_path)
    # One config as two recipes, one of them with per-seed options.
    runs = comparison.plan_runs(
        [str(ROOT / configs[1])] * 2, [4, 1], tmp_path, ['a=1'],
        replay=False, names=['figkd', 'control'],
        run_options=lambda recipe, seed: [f'b={seed}'] * (recipe == 'control'))
    assert [(r.recipe, r.seed, r.options) for r in runs] == [
        ('figkd', 4, ('a=1', )), ('figkd', 1, ('a=1', )),
        ('control', 4, ('a=1', 'b=4')), ('control', 1, ('a=1', 'b=1'))]
    assert runs[3].work_dir == str(tmp_path / 'control' / 'seed_1')


def test_run_state_reuses_only_the_same_finished_config(tmp_path):
    from mmengine.config import Config
    run, = comparison.plan_runs([str(ROOT / 'configs/demo/student.py')],
                                [3], tmp_path, replay=False)
    assert comparison.run_state(run) == ('new', None)

    def saved(seed, epochs_logged):
        work = tmp_path / 'demo' / 'student' / 'seed_3'
        work.mkdir(parents=True, exist_ok=True)
        cfg = comparison.run_config(run)
        cfg.randomness.seed = seed
        cfg.dump(str(work / 'student.py'))
        scalars = work / '20261128_000000' / 'vis_data' / 'scalars.json'
        scalars.parent.mkdir(parents=True, exist_ok=True)
        scalars.write_text(''.join(
            json.dumps({'accuracy/top1': 30.0 + e, 'step': e}) + '\n'
            for e in epochs_logged))
        return Config.fromfile(str(work / 'student.py'))

    last = Config.fromfile(str(ROOT / 'configs/demo/student.py')
                           ).train_cfg.max_epochs
    assert saved(3, [last]).train_cfg.max_epochs == last
    state, metrics = comparison.run_state(run)
    assert state == 'finished' and metrics['accuracy/top1'] == 30.0 + last
    assert comparison.collect([run])[0]['top1'] == 30.0 + last
    saved(3, [1, last - 1])  # stopped before the last epoch
    assert comparison.run_state(run) == ('unfinished', None)
    assert comparison.collect([run])[0]['status'] == 'missing'
    saved(4, [last])  # another seed's run in this work dir
    state, why = comparison.run_state(run)
    assert state == 'other' and 'randomness.seed' in why
    with pytest.raises(comparison.ComparisonError, match='left as they are'):
        comparison.check_work_dirs([run])
    # Checkpoints without mmengine's config: not this run's either.
    other, = comparison.plan_runs([str(ROOT / 'configs/demo/student.py')],
                                  [5], tmp_path, replay=False)
    os_dir = tmp_path / 'demo' / 'student' / 'seed_5'
    os_dir.mkdir(parents=True, exist_ok=True)
    (os_dir / 'epoch_3.pth').write_bytes(b'')
    assert comparison.run_state(other)[0] == 'other'


def test_cluster_commands_carry_the_run(tmp_path):
    run, = comparison.plan_runs([str(ROOT / 'configs/demo/kd.py')], [2],
                                tmp_path, ['train_cfg.max_epochs=3'],
                                replay=False)
    dist = comparison.cluster_command(run, False, 'dist', 4)
    assert dist.startswith(f'tools/dist_train.sh {run.config} 4 --work-dir '
                           f'{run.work_dir} --cfg-options randomness.seed=2 '
                           'train_cfg.max_epochs=3')
    run.cache_dir = str(tmp_path / 'cache')
    slurm = comparison.cluster_command(run, True, 'slurm', 16, 'gpu')
    assert slurm.startswith(f'GPUS=16 tools/slurm_train.sh gpu demo_kd_s2 '
                            f'{run.config} {run.work_dir} --resume '
                            f'--teacher-cache {run.cache_dir} --cfg-options')


def test_a_failed_run_is_reported_with_its_log_and_the_rest_goes_on(
        tmp_path):
    # A dataset root that does not exist: tools/train.py stops at start.
    bad = [f'{loader}.dataset.data_root={tmp_path}/nowhere' for loader in
           ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    runs = comparison.plan_runs([str(ROOT / 'configs/demo/student.py')],
                                [0, 1], tmp_path / 'work', bad, replay=False)
    results = comparison.train_all(runs, str(ROOT / 'tools' / 'train.py'),
                                   str(tmp_path / 'logs'), jobs=2,
                                   say=lambda text: None)
    assert [r['status'] for r in results] == ['failed', 'failed']
    for result in results:
        log = result['error'].split('log: ')[1]
        assert 'nowhere' in open(log).read()
    summary = comparison.summarize(results)
    assert len(summary['missing']) == 2


def test_logit_spectrum_tool_on_a_distillation_checkpoint(tmp_path):
    from mmengine.config import Config

    from figkd_mmrazor.analysis.classifier_logits import build_classifier
    from figkd_mmrazor.demo import DemoSpec
    from tiny import tiny_cub
    data = tiny_cub(tmp_path / 'cub')
    names = '[' + ','.join(DemoSpec.from_dir(data).class_names()) + ']'
    opts = ['model.teacher.head.num_classes=4',
            'model.architecture.head.num_classes=4',
            'data_preprocessor.num_classes=4',
            f'test_dataloader.dataset.data_root={data}',
            f'test_dataloader.dataset.classes={names}']
    cfg = Config.fromfile(ROOT / 'configs/demo/kd.py')
    cfg.merge_from_dict(comparison.parse_cfg_options(opts))
    torch.manual_seed(0)
    teacher = build_classifier(cfg.model.teacher).state_dict()
    student = build_classifier(cfg.model.architecture).state_dict()
    ckpt = tmp_path / 'distill.pth'
    torch.save({'state_dict': {
        **{f'teacher.{k}': v for k, v in teacher.items()},
        **{f'architecture.{k}': v for k, v in student.items()}}}, ckpt)
    order = tmp_path / 'order.json'
    order.write_text(json.dumps({'class_order': [2, 0, 3, 1]}))
    for extra, out in (([], 'plain'), (['--class-order', order], 'ordered')):
        proc = run_tool('tools/analysis/logit_spectrum.py',
                        'configs/demo/kd.py', ckpt, '--level', '2',
                        '--device', 'cpu', '--out', tmp_path / out,
                        *extra, '--cfg-options', *opts)
        assert '| cA2 |' in proc.stdout and '| cD1 |' in proc.stdout
    plain, ordered = (json.loads((tmp_path / out / 'spectrum.json')
                                 .read_text()) for out in ('plain', 'ordered'))
    assert plain['num_samples'] == 8 and plain['num_classes'] == 4
    for report in (plain, ordered):
        for who in ('teacher', 'student'):  # haar: Parseval
            assert sum(b[f'{who}_energy'] for b in report['bands']) == \
                pytest.approx(report['total_energy'][who])
    # Reordering the classes keeps the energy, moves it between bands.
    assert ordered['total_energy'] == pytest.approx(plain['total_energy'])
    assert [b['teacher_energy'] for b in ordered['bands']] != \
        pytest.approx([b['teacher_energy'] for b in plain['bands']])
    assert (tmp_path / 'plain' / 'spectrum.png').read_bytes()[:4] == \
        b'\x89PNG'


def test_compare_recipes_collects_finished_runs_and_prints_commands(
        tmp_path):
    """Runs trained elsewhere (here: written as mmengine writes them) are
    collected; only unfinished ones get a cluster command."""
    configs = ['configs/demo/student.py', 'configs/demo/teacher.py']
    runs = comparison.plan_runs([str(ROOT / c) for c in configs], [0, 1],
                                tmp_path, replay=False)
    for i, run in enumerate(runs[:3]):  # the teacher's seed 1 is missing
        cfg = comparison.run_config(run)
        epochs = cfg.train_cfg.max_epochs
        stamp = os.path.join(run.work_dir, '20261128_000000', 'vis_data')
        os.makedirs(stamp)
        cfg.dump(os.path.join(run.work_dir, os.path.basename(run.config)))
        with open(os.path.join(stamp, 'scalars.json'), 'w') as f:
            json.dump({'accuracy/top1': 20.0 + 3 * i, 'step': epochs}, f)
    args = ('tools/analysis/compare_recipes.py', *configs, '--seeds', '0',
            '1', '--work-dir', tmp_path)
    proc = run_tool(*args, '--collect', check=False)
    assert proc.returncode != 0 and '1 run(s) missing' in proc.stderr
    assert '| demo/student | 2 | 21.50 +- 2.12 |' in proc.stdout
    report = json.loads((tmp_path / 'comparison.json').read_text())
    assert report['recipes'][1]['top1'] == {'0': 26.0}
    assert report['missing'][0]['seed'] == 1
    proc = run_tool(*args, '--launcher', 'dist', '--gpus', '2')
    commands = [line for line in proc.stdout.splitlines()
                if 'dist_train.sh' in line]
    assert len(commands) == 1 and 'randomness.seed=1' in commands[0]
    assert str(tmp_path / 'demo' / 'teacher' / 'seed_1') in commands[0]


# One teacher per comparison; what a plan checks -----------------------------

def _tiny_kd(tmp_path, seed=0):
    """A tiny KD config with a saved teacher: (config, teacher path)."""
    from mmengine.config import Config

    from tiny import tiny_config, tiny_cub
    path = tiny_config('configs/demo/kd.py', tiny_cub(tmp_path / 'cub'),
                       tmp_path / 'kd.py')
    cfg = Config.fromfile(path)
    teacher = tmp_path / 'teacher.pth'
    save_random_teacher(cfg, teacher, seed)
    cfg.model.teacher_ckpt = str(teacher)
    cfg.dump(str(path))
    return path, teacher


def test_a_comparison_never_pairs_runs_of_two_teachers(tmp_path):
    import hashlib

    from mmengine.config import Config
    path, teacher = _tiny_kd(tmp_path)
    work = tmp_path / 'work'
    first, = comparison.plan_runs([str(path)], [0], work)
    identity = json.loads(
        open(os.path.join(first.work_dir, 'run_identity.json')).read())
    assert identity['teacher_sha256'] == hashlib.sha256(
        teacher.read_bytes()).hexdigest()
    assert identity['train_data']['samples'] == 16
    # Planned again, nothing changed: the same runs.
    assert comparison.plan_runs([str(path)], [0], work)[0].identity == \
        first.identity
    # The teacher overwritten in place before a second invocation with more
    # seeds: seed 0 learnt from the old teacher, seed 1 would not.
    save_random_teacher(Config.fromfile(path), teacher, seed=1)
    with pytest.raises(comparison.ComparisonError,
                       match='different teacher checkpoints') as err:
        comparison.plan_runs([str(path)], [0, 1], work)
    assert 'kd seed 0' in str(err.value) and 'kd seed 1' in str(err.value)


def test_a_recipe_whose_teacher_cannot_be_replayed_trains_it_live(tmp_path):
    path, _ = _tiny_kd(tmp_path)
    runs = comparison.plan_runs([str(path)], [0, 1], tmp_path / 'work',
                                ['model.teacher_norm_eval=False'])
    assert all(run.cache_dir is None and not run.records for run in runs)
    assert all('teacher_norm_eval' in run.live_teacher for run in runs)
    summary = comparison.summarize(comparison.collect(runs))
    markdown = comparison.format_markdown(summary, {})
    # Said once in the report, not once per run.
    assert markdown.count('trained with its teacher live') == 1


def test_a_config_error_stops_the_plan_before_anything_trains(tmp_path):
    path, _ = _tiny_kd(tmp_path)
    with pytest.raises(comparison.ComparisonError,
                       match='recipe kd .* does not build') as err:
        comparison.plan_runs(
            [str(path)], [0, 1], tmp_path / 'work',
            ['model.distiller.distill_losses.loss_kd.type=KLDivergense'])
    assert 'KLDivergense' in str(err.value)
    assert not (tmp_path / 'work').exists()


def test_a_new_report_sets_the_earlier_one_aside(tmp_path):
    results = [dict(recipe='a', config='a.py', seed=0, top1=50.0,
                    status='done')]
    first = comparison.write_report(comparison.summarize(results), {},
                                    tmp_path)
    earlier = open(first['md']).read()
    results[0]['top1'] = 10.0
    comparison.write_report(comparison.summarize(results), {}, tmp_path)
    [kept] = os.listdir(tmp_path / 'previous_reports')
    folder = tmp_path / 'previous_reports' / kept
    assert sorted(os.listdir(folder)) == ['comparison.json', 'comparison.md',
                                          'comparison.png']
    assert open(folder / 'comparison.md').read() == earlier
    assert '10.00' in open(first['md']).read()


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_spectral_order_recovers_a_shuffled_robinson_order(seed):
    """A similarity that falls off with distance along a hidden order (a
    Robinson matrix), its classes shuffled: spectral seriation finds the
    hidden order up to reversal, which a brute force over all orders of 7
    classes confirms is the best one by adjacent similarity."""
    import itertools
    rng = np.random.default_rng(seed)
    n = 12
    hidden = rng.permutation(n)  # hidden[k]: the class at place k
    place = np.argsort(hidden)
    gaps = np.abs(place[:, None] - place[None, :])
    sim = np.exp(-gaps / 3.0) + 0.3  # shifted: the Laplacian uses >= 0
    order = co.spectral_order(sim)
    assert order in (list(hidden), list(hidden[::-1]))
    assert order[0] < order[-1]  # the one direction it returns
    # numpy's eigh against scipy's on the same Laplacian.
    import scipy.linalg
    w = sim - np.diag(np.diag(sim))
    lap = np.diag(w.sum(1)) - w
    np.testing.assert_allclose(np.linalg.eigvalsh(lap),
                               scipy.linalg.eigh(lap, eigvals_only=True),
                               atol=1e-10)
    place7 = rng.permutation(7)
    small = np.exp(-np.abs(np.subtract.outer(place7, place7)) / 2.0)
    sub = [list(p) for p in itertools.permutations(range(7))]
    best = max(co.neighbour_similarity(small, p, cyclic=False) for p in sub)
    assert co.neighbour_similarity(small, co.spectral_order(small),
                                   cyclic=False) == pytest.approx(best)
