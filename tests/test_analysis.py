"""tools/analysis: logit spectrum, class order, step benchmark, seed study."""
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
import pywt
import torch

from tiny import ROOT, run_tool

sys.path.insert(0, str(ROOT / 'tools' / 'analysis'))

import class_order as co  # noqa: E402
import logit_spectrum as ls  # noqa: E402
import seed_study as ss  # noqa: E402
from figkd_mmrazor.losses import FiGKDLoss  # noqa: E402


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
    table = ls.format_table(report)
    assert table.count('\n| c') == 3 and 'cosine' in table
    json.dumps(report)
    png = ls.plot_report(report, str(tmp_path / 'spectrum.png'))
    assert open(png, 'rb').read(4) == b'\x89PNG'
    teacher_only = ls.spectrum_report(t, None, 'db2', 1)
    assert 'cosine' not in teacher_only['bands'][0]
    ls.plot_report(teacher_only, str(tmp_path / 'teacher.png'))


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


def test_class_order_cli_json_loads_in_figkd_loss(tmp_path):
    weight, cluster = planted(seed=4)
    state = {'backbone.conv1.weight': torch.zeros(4, 3, 3, 3),
             'head.fc.weight': torch.tensor(weight, dtype=torch.float32),
             'head.fc.bias': torch.zeros(12)}
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {f'teacher.{k}': v for k, v in state.items()}},
               ckpt)
    out = tmp_path / 'order.json'
    co.main([str(ROOT / 'configs/demo/teacher.py'), str(ckpt), '--out',
             str(out), '--method', 'weights'])
    data = json.loads(out.read_text())
    assert data['method'] == 'weights' and data['source'] == str(ckpt)
    assert data['weight_key'] == 'teacher.head.fc.weight'
    assert_clusters_contiguous(data['class_order'], cluster)

    loss = FiGKDLoss(class_order=str(out), level=2)
    assert loss.class_order.tolist() == data['class_order']
    s, t = torch.randn(3, 12), torch.randn(3, 12)
    order = torch.tensor(data['class_order'])
    expected = FiGKDLoss(level=2)(s[:, order], t[:, order])
    assert torch.allclose(loss(s, t), expected)


def test_oracle_order_undoes_a_relabelling(tmp_path):
    """The study's shuffled data: label c becomes perm[c]; the teacher's
    rows move alike; class_order=perm restores the original order."""
    perm = ss.permutation(12, seed=0)
    x = torch.randn(4, 7)
    weight = torch.randn(12, 7)
    src = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'head.fc.weight': weight,
                               'head.fc.bias': torch.arange(12.)}}, src)
    dst = ss.permute_teacher(str(src), str(tmp_path / 'perm.pth'), perm)
    moved = torch.load(dst)['state_dict']
    old, new = x @ weight.t(), x @ moved['head.fc.weight'].t()
    for c in range(12):
        assert torch.equal(new[:, perm[c]], old[:, c])
        assert moved['head.fc.bias'][perm[c]] == c
    s_old = torch.randn(4, 12)
    s_new = torch.empty_like(s_old)
    s_new[:, perm] = s_old
    oracle = FiGKDLoss(class_order=perm, level=2)(s_new, new)
    assert torch.allclose(oracle, FiGKDLoss(level=2)(s_old, old))


def test_make_shuffled_dataset_relabels_consistently(tmp_path):
    from figkd_mmrazor.demo import make_demo_cub
    src = make_demo_cub(tmp_path / 'cub', families=3, species_per_family=2,
                           train_per_class=2, test_per_class=1,
                           progress=False)
    perm = ss.permutation(6, seed=1)
    dst = ss.make_shuffled_dataset(str(src), str(tmp_path / 'shuffled'),
                                   perm)
    names, new_names = ss.read_class_names(str(src)), ss.read_class_names(dst)

    def labels(root):
        with open(f'{root}/image_class_labels.txt') as f:
            return [int(line.split()[1]) - 1 for line in f]

    for old, new in zip(labels(src), labels(dst)):
        assert new == perm[old] and new_names[new] == names[old]
    assert (tmp_path / 'shuffled' / 'images').is_symlink()
    # Idempotent for the same permutation, refuses another one.
    assert ss.make_shuffled_dataset(str(src), dst, perm) == dst
    with pytest.raises(FileExistsError):
        ss.make_shuffled_dataset(str(src), dst, list(range(6)))


# ------------------------------------------------------------ benchmark
def test_benchmark_step_tiny_runs_and_prints_ratios(tmp_path):
    config = ('configs/demo/figkd.py' if (ROOT / 'configs/demo/figkd.py')
              .is_file() else 'configs/figkd/cub_r50_r18.py')
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark_step.py', '--config', config,
                    '--size', '32', '--batch', '2', '--steps', '2',
                    '--warmup', '1', '--threads', '1', '--num-classes', '16',
                    '--figkd', 'haar:1', 'db2:2', 'sym8:3', '--json', out)
    text = proc.stdout
    assert '| method | median ms | p25-p75 ms | x KD |' in text
    for label in ('student (CE)', 'KD', 'DKD', 'FiGKD haar L1',
                  'FiGKD db2 L2'):
        assert f'| {label} |' in text
    assert '| KD | ' in text and ' | 1.000 |' in text
    result = json.loads(out.read_text())
    assert len(result['rows']) == 5
    assert all(math.isfinite(r['loss']) for r in result['rows'])
    assert any('sym8' in s for s in result['skipped'])  # too deep for 16


# ----------------------------------------------------------- seed study
def fake_results():
    rows = []
    for variant, values in (('student', [60.0, 62.0, 64.0]),
                            ('kd', [66.0, 68.0, None]),
                            ('figkd', [70.0, 71.0, 72.0])):
        for seed, value in enumerate(values):
            rows.append(dict(
                run_id=f'{variant}__seed{seed}', variant=variant, seed=seed,
                status='done' if value is not None else 'failed',
                top1=value, teacher_top1=80.0 if variant != 'student'
                else None, elapsed_s=12.0,
                error=None if value is not None else 'exit code 1 | oom'))
    for variant, value in (('shuffled_kd', 50.0), ('shuffled_figkd', 49.0)):
        rows.append(dict(run_id=f'{variant}__seed0', variant=variant, seed=0,
                         status='done', top1=value))
    rows.append(dict(run_id='figkd_level-3__seed0', variant='figkd_level-3',
                     seed=0, status='skipped', top1=None,
                     error='level 3 is deeper than 2'))
    return rows


def test_seed_study_report_on_fake_results(tmp_path):
    results = fake_results()
    summary = ss.summarize(results)
    assert summary['student']['mean'] == pytest.approx(62.0)
    assert summary['student']['std'] == pytest.approx(2.0)
    assert summary['kd']['n'] == 2 and summary['kd']['mean'] == 67.0
    assert 'figkd_level-3' not in summary
    groups = {'methods': ['student', 'kd', 'figkd'],
              'level': ['figkd', 'figkd_level-3']}
    md, js = ss.write_report(results, str(tmp_path), groups,
                             {'figkd': 'FiGKD haar L1'}, dict(seeds=[0, 1, 2]))
    text = open(md).read()
    assert '## methods' in text and '## level' in text
    # Paired with KD seed by seed; KD failed on seed 2, so n=2.
    assert ('| student |  | 3 | 62.00 | 2.00 | 60.00 | 64.00 | '
            '-6.00 +- 0.00 (n=2) |') in text
    assert ('| figkd | FiGKD haar L1 | 3 | 71.00 | 1.00 | 70.00 | 72.00 | '
            '+3.50 +- 0.71 (n=2) |') in text
    assert '| kd |  | 2 | 67.00 | 1.41 | 66.00 | 68.00 | - |' in text
    assert '| figkd_level-3 |  | 0 | - |' in text
    # Shuffled-class runs are compared with KD on the shuffled data.
    paired = ss.paired_differences(results)
    assert paired['shuffled_figkd']['mean'] == -1.0
    assert 'shuffled_kd' not in paired
    # Every run is listed, failed and skipped ones included.
    for r in results:
        assert f"| {r['run_id']} | {r['variant']} |" in text
    assert '| failed |' in text and 'exit code 1 / oom' in text
    data = json.load(open(js))
    assert len(data['runs']) == len(results)
    assert data['summary']['figkd']['n'] == 3
    assert data['vs_kd']['figkd']['mean'] == pytest.approx(3.5)


def test_seed_study_variants_and_dry_run(tmp_path):
    variants, groups = ss.build_variants(ss.METHODS, ablations=True)
    names = [v.name for v in variants]
    assert len(names) == len(set(names)) == 23
    # The FiGKD default is one variant shared by every ablation group.
    for group in ('wavelet', 'level', 'target', 'weights', 'class_order'):
        assert 'figkd' in groups[group]
    assert len(groups['weights']) == 11  # 3 x 4 minus (0, 0)
    assert 'figkd_low-0_high-0' not in names
    kd_like = next(v for v in variants if v.name == 'figkd_low-1_high-1')
    assert 'KD loss' in kd_like.describe()
    plan = ss.plan_runs(variants, groups, [0, 1, 2], [0])
    assert len(plan) == 4 * 3 + 19
    results = ss.main(['--dry-run', '--ablations', '--seeds', '0', '1',
                       '--work-dir', str(tmp_path)])
    assert len(results) == 46
    assert all(r['status'] == 'planned' for r in results)
    report = (tmp_path / 'dry_run' / 'results.md').read_text()
    # The schedule is read from the demo configs, not restated.
    from mmengine.config import Config
    epochs = Config.fromfile(
        osp.join(ss.ROOT, 'configs/_base_/schedules/demo.py')).max_epochs
    assert f'- epochs: {epochs}\n' in report
    assert not (tmp_path / 'runs').exists()  # nothing trained
    assert ss.check_variant(
        ss.Variant('x', 'figkd', (('wavelet', 'sym4'), ('level', 3))), 16)


def test_seed_study_select_variants(tmp_path):
    variants, groups = ss.build_variants(ss.METHODS, ablations=True)
    kept, kept_groups = ss.select_variants(
        variants, groups, ['figkd_low-1_high-0.5', 'figkd_level-3'])
    assert sorted(v.name for v in kept) == sorted(
        list(ss.METHODS) + ['figkd_low-1_high-0.5', 'figkd_level-3'])
    assert kept_groups['weights'] == ['figkd', 'figkd_low-1_high-0.5']
    assert 'wavelet' in kept_groups and 'target' in kept_groups  # figkd
    plan = ss.plan_runs(kept, kept_groups, [0, 1, 2, 3, 4], [3, 4])
    assert len(plan) == 4 * 5 + 2 * 2
    with pytest.raises(SystemExit, match='figkd_low-1_high-3'):
        ss.select_variants(variants, groups, ['figkd_low-1_high-3'])


def test_seed_study_skips_a_finished_run(tmp_path):
    """A run whose result file holds the same settings is not trained
    again (here it could not be: there is no data)."""
    study = ss.Study(ss.parse_args(['--tiny', '--work-dir', str(tmp_path)]))
    study.names = [f'{c + 1:03d}.c{c}' for c in range(16)]
    study.teacher = str(tmp_path / 'teacher.pth')
    study.total = 2
    variant = ss.Variant('figkd_level-2', 'figkd', (('level', 2), ))
    options, settings = study.settings(variant, 1)
    assert 'randomness.seed=1' in options
    assert 'model.distiller.distill_losses.loss_figkd.level=2' in options
    assert 'model.head.num_classes=16' not in options
    assert 'model.architecture.head.num_classes=16' in options
    run_dir = tmp_path / 'runs' / ss.run_id(variant, 1)
    run_dir.mkdir(parents=True)
    (run_dir / 'epoch_1.pth').write_bytes(b'')
    (run_dir / 'demo_stage.json').write_text(json.dumps(dict(
        settings=settings, top1=55.5, teacher_top1=70.0, wall_s=3.0,
        checkpoint=str(run_dir / 'epoch_1.pth'))))
    done = study.run(variant, 1)
    assert done['status'] == 'done' and done['top1'] == 55.5
    # Another seed has no result: it trains, and fails without data.
    failed = study.run(variant, 2)
    assert failed['status'] == 'failed' and failed['top1'] is None
