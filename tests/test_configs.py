"""Every recipe under configs/ parses, builds offline and is consistent; the
distilled student hands off to mmpretrain; a missing teacher fails early.

Models are built with URL weights turned off (tests have no internet): the
teacher checkpoint is set to None and every ``Pretrained`` init_cfg dropped.
"""
import ast
import copy
import functools
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import mmpretrain
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.registry import DATASETS, MODELS, DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.structures import DataSample

from figkd_mmrazor.preflight import check_teacher
from tiny import ROOT, run_tool, tiny_config, tiny_cub

CONFIGS = sorted(p.relative_to(ROOT).as_posix()
                 for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)
ALGORITHMS = ('figkd', 'kd', 'dkd')
DISTILL = [c for c in CONFIGS if c.split('/')[1] in ALGORITHMS]
MIM = Path(mmpretrain.__file__).parent / '.mim'

# docs/datasets.md: data_root -> (mmpretrain type, number of classes).
DATASETS_TABLE = {
    'data/CUB_200_2011': ('CUB', 200),
    'data/Stanford_Cars': ('StanfordCars', 196),
    'data/fgvc-aircraft-2013b': ('FGVCAircraft', 100),
    'data/stanford_dogs': ('CustomDataset', 120),
    'data/Flowers102': ('Flowers102', 102),
    'data/Oxford-IIIT_Pets': ('OxfordIIITPet', 37),
    'data/cifar100': ('CIFAR100', 100),
    'data/tiny-imagenet-200': ('CustomDataset', 200),
}
# Each baseline is the student of these distillation experiments, alone.
BASELINE_OF = {
    'cub_r18': 'cub_r50_r18',
    'cub_mbv2': 'cub_r50_mbv2',
    'cub_r18_384px': 'cub_swinl_r18',
    'stanford_cars_r18': 'stanford_cars_r50_r18',
    'fgvc_aircraft_r18': 'fgvc_aircraft_r50_r18',
    'stanford_dogs_r18': 'stanford_dogs_r50_r18',
    'flowers102_r18': 'flowers102_r50_r18',
    'oxford_pets_r18': 'oxford_pets_r50_r18',
    'cifar100_r18': 'cifar100_r50_r18',
    'tiny_imagenet_r18': 'tiny_imagenet_r50_r18',
}
TEACHER_CKPT = re.compile(r'^work_dirs/teachers/(\w+)/epoch_(\d+)\.pth$')

_cfg_cache = {}


def load(config) -> Config:
    """Config.fromfile, once per file (parsing mmpretrain:: bases is slow)."""
    if config not in _cfg_cache:
        _cfg_cache[config] = Config.fromfile(ROOT / config)
    return copy.deepcopy(_cfg_cache[config])


def drop_pretrained(cfg):
    """``cfg`` (dicts and lists) without ``Pretrained`` init_cfgs.

    A dropped init_cfg falls back to the module's own initialisation; in a
    list of init_cfgs only the Pretrained entries go.
    """
    def is_pretrained(init):
        return isinstance(init, dict) and init.get('type') == 'Pretrained'

    if isinstance(cfg, dict):
        out = {}
        for key, value in cfg.items():
            if key == 'init_cfg':
                if is_pretrained(value):
                    continue
                if isinstance(value, (list, tuple)):
                    value = [v for v in value if not is_pretrained(v)]
                    if not value:
                        continue
            out[key] = drop_pretrained(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(drop_pretrained(v) for v in cfg)
    return cfg


def offline_model_cfg(cfg) -> dict:
    """The model config as the Runner builds it, without any download."""
    model = drop_pretrained(cfg.model.to_dict())
    if 'architecture' in model:
        model['teacher_ckpt'] = None
    model.setdefault('data_preprocessor',
                     copy.deepcopy(cfg.data_preprocessor.to_dict()))
    return model


def urls(obj):
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [u for v in obj for u in urls(v)]
    return [obj] if isinstance(obj, str) and '://' in obj else []


_teachers = {}  # built teachers by config: Swin-L (195M parameters) once


def build_model(cfg):
    model = offline_model_cfg(cfg)
    assert not urls(model), f'a download is left: {urls(model)}'
    key = json.dumps(model.get('teacher'), sort_keys=True)
    if 'teacher' in model and key in _teachers:
        model['teacher'] = _teachers[key]
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        built = MODELS.build(model)
    if 'teacher' in model:
        _teachers[key] = built.teacher
    return built


def without(cfg, *keys):
    """A plain dict of ``cfg`` without ``keys`` at any depth."""
    if isinstance(cfg, dict):
        return {k: without(v, *keys) for k, v in cfg.items() if k not in keys}
    if isinstance(cfg, (list, tuple)):
        return [without(v, *keys) for v in cfg]
    return cfg


def data_root_of(cfg):
    return cfg.train_dataloader.dataset.data_root


def dataset_of(cfg):
    """(mmpretrain type, number of classes) of the config's dataset: from
    the docs/datasets.md table, the glyph generator's default spec (the
    demo), else from the config's class names."""
    root = data_root_of(cfg)
    if root in DATASETS_TABLE:
        return DATASETS_TABLE[root]
    if root == 'data/glyphs':
        from figkd_mmrazor.glyphs import GlyphSpec
        return 'CUB', GlyphSpec().num_classes
    dataset = cfg.train_dataloader.dataset
    classes = dataset.get('classes') or dataset.get('metainfo', {}).get(
        'classes')
    assert isinstance(classes, (list, tuple)), (
        f'{root}: neither in docs/datasets.md nor given by class names')
    return dataset.type, len(classes)


def student_and_teacher(cfg):
    model = cfg.model
    return (model.architecture, model.teacher) if 'architecture' in model \
        else (model, None)


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """One intra-op thread, as run_tool gives the subprocesses: a 2-core
    machine is many times slower when the threads oversubscribe it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------- layout
def test_every_dataset_has_recipes_in_every_algorithm_folder():
    names = {c.split('/')[-1] for c in DISTILL}
    for algo in ALGORITHMS:
        folder = {c.split('/')[-1] for c in DISTILL if f'/{algo}/' in c}
        assert folder == names, f'configs/{algo} differs: {names ^ folder}'
    roots = {load(c).train_dataloader.dataset.data_root for c in DISTILL}
    assert roots == set(DATASETS_TABLE)
    for name in ('cub_r50_mbv2.py', 'cub_swinl_r18.py', 'cifar100_r50_r18.py'):
        assert name in names
    baselines = {c.split('/')[-1][:-3] for c in CONFIGS if '/baselines/' in c}
    assert baselines == set(BASELINE_OF)


def test_dataset_table_is_the_documented_one():
    docs = (ROOT / 'docs' / 'datasets.md').read_text()
    for root, (dtype, num_classes) in DATASETS_TABLE.items():
        row, = [line for line in docs.splitlines()
                if line.startswith('|') and f'`{root}`' in line]
        cells = [c.strip() for c in row.strip('|').split('|')]
        assert f'`{dtype}`' in cells and str(num_classes) in cells, row


# ----------------------------------------------------------- every config
@pytest.mark.parametrize('config', CONFIGS)
def test_config_parses_with_consistent_classes_and_data(config, tmp_path):
    cfg = load(config)
    dtype, num_classes = dataset_of(cfg)
    student, teacher = student_and_teacher(cfg)
    assert student.head.num_classes == num_classes
    if teacher is not None:
        assert teacher.head.num_classes == num_classes
        assert cfg.default_scope == 'mmrazor'
        assert cfg.val_cfg.type == 'mmrazor.SingleTeacherDistillValLoop'
        assert {'type': 'StudentCheckpointHook'} in cfg.custom_hooks
    prep = cfg.data_preprocessor
    assert prep.type == 'ClsDataPreprocessor'
    assert prep._scope_ == 'mmpretrain'  # also under MMRazor's scope
    assert prep.num_classes == num_classes
    assert {'mean', 'std', 'to_rgb'} <= set(prep)
    assert 'figkd_mmrazor' in cfg.custom_imports.imports

    # The dataset and metric types resolve under the config's default scope
    # (lazily: no annotation file is read), and the class lists agree.
    (tmp_path / 'cars_annos.mat').touch()  # StanfordCars picks its layout
    (tmp_path / 'classes.txt').write_text(
        ''.join(f'class{i}\n' for i in range(num_classes)))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            ds_cfg = cfg[key].dataset.to_dict()
            assert ds_cfg['type'] == dtype
            assert ds_cfg['data_root'] == data_root_of(cfg)
            assert ds_cfg.get('download', False) is False  # CIFAR: never
            ds_cfg.update(data_root=str(tmp_path), lazy_init=True)
            if isinstance(ds_cfg.get('classes'), str):
                ds_cfg['classes'] = str(tmp_path / 'classes.txt')
            dataset = DATASETS.build(ds_cfg)
            classes = dataset.metainfo.get('classes')
            if classes is not None:  # Flowers102 has no class names
                assert len(classes) == num_classes
        Evaluator(cfg.val_evaluator.to_dict())


_swin_ran = []


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_offline(config):
    cfg = load(config)
    _, num_classes = dataset_of(cfg)
    model = build_model(cfg)
    assert model.data_preprocessor.num_classes == num_classes
    heads = ([model.architecture.head, model.teacher.head]
             if hasattr(model, 'teacher') else [model.head])
    for head in heads:
        assert head.fc.out_features == num_classes
    if hasattr(model, 'teacher'):
        assert not any(p.requires_grad for p in model.teacher.parameters())

    # One loss evaluation: the losses run for this number of classes, e.g.
    # FiGKD's wavelet transform of 37 Oxford-IIIT Pets logits. Small inputs,
    # except for Swin-L (window 12 needs 384 px): that one runs once only.
    size = 32
    if hasattr(model, 'teacher') and cfg.model.teacher.backbone.type == \
            'SwinTransformer':
        if _swin_ran:
            return
        _swin_ran.append(config)
        size = 384
    torch.manual_seed(0)
    samples = [DataSample().set_gt_label(label)
               for label in (0, num_classes - 1)]
    model.train()
    losses = model.loss(torch.randn(2, 3, size, size), samples)
    expected = {'loss'}
    if hasattr(model, 'teacher'):
        loss_name, = cfg.model.distiller.distill_losses
        expected = {'student.loss', f'distill.{loss_name}'}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    if not hasattr(model, 'teacher'):
        assert losses['loss'].requires_grad
        return

    # The distillation loss is what the recipe adds: positive for an
    # untrained teacher and student (their logits differ), and its gradient
    # reaches the student's weights. A recorder that detaches the logits
    # would leave the student training on cross-entropy alone.
    distill = losses[f'distill.{loss_name}']
    assert distill.item() > 0, f'{config}: distillation loss {distill.item()}'
    assert distill.requires_grad, f'{config}: distillation loss has no grad'
    student = model.architecture
    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(distill, [p for _, p in named],
                                allow_unused=True)
    by_name = dict(zip((n for n, _ in named), grads))
    fc = by_name['head.fc.weight']
    assert fc is not None and torch.isfinite(fc).all() and fc.abs().sum() > 0
    # ... through the backbone too, not only into the last layer.
    reached = [n for n, g in by_name.items()
               if n.startswith('backbone.') and g is not None
               and g.abs().sum() > 0]
    assert reached, f'{config}: no backbone gradient from {loss_name}'


def test_drop_pretrained_helper():
    cfg = dict(a=dict(init_cfg=dict(type='Pretrained', checkpoint='x')),
               b=[dict(init_cfg=[dict(type='Kaiming'),
                                 dict(type='Pretrained', checkpoint='y')])],
               c=dict(init_cfg=dict(type='Kaiming')))
    assert drop_pretrained(cfg) == dict(
        a={}, b=[dict(init_cfg=[dict(type='Kaiming')])],
        c=dict(init_cfg=dict(type='Kaiming')))


# ------------------------------------------------------- released weights
@functools.lru_cache()
def _metafile_models():
    models = []
    for path in (MIM / 'configs').rglob('metafile.yml'):
        models += yaml.safe_load(path.read_text()).get('Models') or []
    return models


def test_every_download_is_published_by_mmpretrain():
    published = set()
    for model in _metafile_models():
        published.update(u for u in (model.get('Weights'),
                                     model.get('Pretrain')) if u)
    for config in CONFIGS:
        cfg = load(config)
        for url in urls(cfg.model.to_dict()):
            assert url in published, f'{config}: {url} not in a metafile'


@pytest.mark.parametrize('config', [c for c in DISTILL
                                    if '://' in load(c).model.teacher_ckpt])
def test_released_teacher_matches_its_mmpretrain_config(config):
    """The URL teacher has the architecture it was trained with."""
    cfg = load(config)
    url = cfg.model.teacher_ckpt
    entry, = [m for m in _metafile_models() if m.get('Weights') == url]
    released = Config.fromfile(MIM / entry['Config']).model
    teacher = cfg.model.teacher
    ignore = ('init_cfg', '_scope_', 'drop_path_rate')  # drop path: training
    assert without(teacher.backbone, *ignore) == without(
        released.backbone, *ignore)
    assert without(teacher.neck, '_scope_') == without(released.neck,
                                                       '_scope_')
    for key in ('type', 'num_classes', 'in_channels'):
        assert teacher.head[key] == released.head[key], key


# --------------------------------------------- teacher recipes, baselines
@pytest.mark.parametrize('config', [c for c in DISTILL if TEACHER_CKPT.match(
    load(c).model.teacher_ckpt or '')])
def test_local_teacher_has_a_recipe_that_writes_it(config):
    cfg = load(config)
    name, epochs = TEACHER_CKPT.match(cfg.model.teacher_ckpt).groups()
    recipe = f'configs/teachers/{name}.py'
    assert recipe in CONFIGS
    teacher_cfg = load(recipe)
    work_dir = os.path.normpath(teacher_cfg.work_dir)
    assert work_dir == f'work_dirs/teachers/{name}'
    assert teacher_cfg.train_cfg.max_epochs == int(epochs)
    assert teacher_cfg.train_dataloader == cfg.train_dataloader
    assert teacher_cfg.val_dataloader == cfg.val_dataloader
    ignore = ('init_cfg', '_scope_', 'topk')
    assert without(teacher_cfg.model.backbone, *ignore) == without(
        cfg.model.teacher.backbone, *ignore)
    assert without(teacher_cfg.model.head, *ignore) == without(
        cfg.model.teacher.head, *ignore)


def test_every_teacher_recipe_is_used():
    used = {TEACHER_CKPT.match(load(c).model.teacher_ckpt or '')
            for c in DISTILL} - {None}
    names = {m.group(1) for m in used}
    recipes = {c.split('/')[-1][:-3] for c in CONFIGS if '/teachers/' in c}
    assert recipes == names


@pytest.mark.parametrize('baseline', sorted(BASELINE_OF))
def test_baseline_is_the_student_alone(baseline):
    base = load(f'configs/baselines/{baseline}.py')
    for algo in ALGORITHMS:
        cfg = load(f'configs/{algo}/{BASELINE_OF[baseline]}.py')
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                    'data_preprocessor', 'optim_wrapper', 'param_scheduler',
                    'train_cfg', 'auto_scale_lr'):
            assert base[key] == cfg[key], key
        student = cfg.model.architecture
        assert without(base.model.backbone, '_scope_') == without(
            student.backbone, '_scope_')
        for key in ('type', 'num_classes', 'in_channels'):
            assert base.model.head[key] == student.head[key], key


# ------------------------------------------------------ README, metafile
FOLDERS = ALGORITHMS + ('baselines', 'teachers')


def _published_top1():
    return {m['Weights']: r['Metrics']['Top 1 Accuracy']
            for m in _metafile_models() for r in m.get('Results') or []
            if m.get('Weights') and 'Top 1 Accuracy' in (r['Metrics'] or {})}


@pytest.mark.parametrize('folder', FOLDERS)
def test_metafile_lists_every_config_and_invents_no_number(folder):
    meta = yaml.safe_load((ROOT / 'configs' / folder / 'metafile.yml')
                          .read_text())
    configs = {c for c in CONFIGS if c.split('/')[1] == folder}
    assert {m['Config'] for m in meta['Models']} == configs
    collections = {c['Name'] for c in meta['Collections']}
    published = _published_top1()
    for model in meta['Models']:
        assert model['In Collection'] in collections
        for result in model['Results']:
            assert result['Metrics']['Top 1 Accuracy'] is None, model['Name']
        for role in ('Student', 'Teacher'):
            entry = model['Metadata'].get(role)
            if entry is None:
                continue
            if not entry['Config'].startswith('mmpretrain::'):
                assert (ROOT / entry['Config']).is_file(), entry['Config']
            top1 = entry['Metrics']['Top 1 Accuracy']
            # Only mmpretrain's published figure of a released model.
            if top1 is not None:
                assert published[entry['Weights']] == top1, model['Name']
        if 'Teacher' in model['Metadata']:
            weights = model['Metadata']['Teacher']['Weights']
            assert weights == load(model['Config']).model.teacher_ckpt


@pytest.mark.parametrize('folder', FOLDERS)
def test_readme_covers_every_config_and_how_to_run(folder):
    text = (ROOT / 'configs' / folder / 'README.md').read_text()
    for config in CONFIGS:
        if config.split('/')[1] == folder:
            assert f'(./{Path(config).name})' in text, config
    for tool in ('tools/train.py', 'tools/dist_train.sh',
                 'tools/slurm_train.sh', 'tools/test.py'):
        assert tool in text
    assert 'not measured' in text.lower()


def test_model_index_imports_every_metafile():
    """mim reads model-index.yml: it must reach every recipe, through
    modelindex (mmpretrain's dependency, the parser mim uses)."""
    from modelindex.load_model_index import load as load_model_index
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    metafiles = sorted(p.relative_to(ROOT).as_posix()
                       for p in (ROOT / 'configs').rglob('metafile.yml'))
    assert sorted(index['Import']) == metafiles
    models = load_model_index(str(ROOT / 'model-index.yml')).models
    assert sorted(m.config for m in models) == sorted(
        c for c in CONFIGS if c.split('/')[1] in FOLDERS)
    assert len({m.name for m in models}) == len(models)


def _urls_of(meta):
    if isinstance(meta, dict):
        return [u for k, v in meta.items()
                for u in ([v] if k == 'URL' else _urls_of(v))]
    if isinstance(meta, list):
        return [u for v in meta for u in _urls_of(v)]
    return []


@pytest.mark.parametrize('folder', ALGORITHMS)
def test_algorithm_collection_cites_its_paper_as_its_readme_does(folder):
    meta = yaml.safe_load((ROOT / 'configs' / folder / 'metafile.yml')
                          .read_text())
    collection, = meta['Collections']
    paper = collection['Paper']
    assert paper['URL'].startswith('https://arxiv.org/abs/'), paper
    readme = (ROOT / 'configs' / folder / 'README.md').read_text()
    assert f"> [{paper['Title']}]({paper['URL']})" in readme
    # mim shows these as links: a relative path would point nowhere.
    for url in _urls_of(meta):
        assert url.startswith('https://'), url


README_SECTIONS = ('<!-- [ALGORITHM] -->', '## Abstract', '## How to use it',
                   '## Results and models', '## Citation')
IMAGE = re.compile(r'<img src="([^"]+)"|!\[[^\]]*\]\(([^)]+)\)')


@pytest.mark.parametrize('folder', ALGORITHMS)
def test_algorithm_readme_has_mmrazors_shape(folder):
    text = (ROOT / 'configs' / folder / 'README.md').read_text()
    lines = text.splitlines()
    assert lines[0].startswith('# ') and lines[2].startswith('> [')
    where = [text.index(s) for s in README_SECTIONS]
    assert where == sorted(where), 'sections out of order'
    assert '```bibtex\n@' in text[text.index('## Citation'):]
    for call in ('get_model(', 'ImageClassificationInferencer('):
        assert call in text[text.index('## How to use it'):]
    images = [a or b for a, b in IMAGE.findall(text)]
    for image in images:
        assert '://' not in image
        assert (ROOT / 'configs' / folder / image).resolve().is_file(), image
    assert images, 'no figure'


@pytest.mark.parametrize('folder', ALGORITHMS + ('baselines', ))
def test_readme_work_dir_note_matches_the_train_scripts(folder, monkeypatch):
    from figkd_mmrazor.preflight import default_work_dir
    config = (f'configs/{folder}/cub_r50_r18.py' if folder in ALGORITHMS
              else 'configs/baselines/cub_r18.py')  # the README's example
    text = (ROOT / 'configs' / folder / 'README.md').read_text()
    ours = default_work_dir(str(ROOT / config))
    name = Path(config).stem
    assert ours == os.path.join('work_dirs', folder, name)
    assert f'`work_dirs/{folder}/<config name>`' in text or (
        '`work_dirs/<algorithm folder>/<config name>`' in text
        and f'`{ours}`' in text)
    # What the README says of mmpretrain's script, from the script itself.
    script = _mmpretrain_train_script()
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', ['train.py', str(ROOT / config)])
    theirs = script.merge_args(load(config), script.parse_args()).work_dir
    assert os.path.normpath(theirs) == os.path.join('work_dirs', name)
    assert '`work_dirs/<config name>`' in text


DEMO_ROW_SOURCE = re.compile(r'\(((?:\.\./)+)docs/(seed_study/\w+\.md)\)')


@pytest.mark.parametrize('folder', ALGORITHMS + ('baselines', ))
def test_readme_measured_numbers_are_those_of_their_source(folder):
    """Every table row citing a stored seed-study output quotes it."""
    text = (ROOT / 'configs' / folder / 'README.md').read_text()
    rows = [line for line in text.splitlines()
            if line.startswith('|') and DEMO_ROW_SOURCE.search(line)]
    assert rows
    for row in rows:
        source = (ROOT / 'docs' / DEMO_ROW_SOURCE.search(row).group(2))
        stored = source.read_text()
        seeds = row.strip('|').split('|')[1].strip()
        (mean, std), *paired = re.findall(
            r'([+-]?\d+\.\d+) \+- (\d+\.\d+)', row)
        assert f'| {seeds} | {mean} | {std} |' in stored, row
        for diff, spread in paired:
            assert f'{diff} +- {spread} (n={seeds})' in stored, row


# ------------------------------------------------ one experiment, 3 losses
EXPERIMENTS = sorted({Path(c).stem for c in DISTILL})


@pytest.mark.parametrize('name', EXPERIMENTS + ['demo'])
def test_algorithms_of_one_experiment_differ_only_in_the_loss(name):
    """configs/{figkd,kd,dkd}/<name>.py, merged, are one experiment: the
    distiller is the only difference (and, in the demo, the work_dir)."""
    folder = lambda algo: f'configs/demo/{algo}.py' if name == 'demo' \
        else f'configs/{algo}/{name}.py'
    rest = {}
    for algo in ALGORITHMS:
        cfg = load(folder(algo)).to_dict()
        loss_name, = cfg['model']['distiller']['distill_losses']
        assert loss_name == f'loss_{algo}'
        del cfg['model']['distiller']
        cfg.pop('distiller', None)
        cfg.pop('work_dir', None)
        rest[algo] = cfg
    assert rest['figkd'] == rest['kd'] == rest['dkd']


@pytest.mark.parametrize('config', DISTILL)
def test_recipe_states_only_its_experiment_and_its_loss(config):
    """A recipe file names its experiment and its loss, nothing else: the
    experiment's facts live once, in _base_/experiments/<name>.py."""
    tree = ast.parse((ROOT / config).read_text())
    assigned = {target.id for node in tree.body
                if isinstance(node, ast.Assign) for target in node.targets}
    assert assigned == {'_base_', 'model'}, assigned
    values = {node.targets[0].id: node.value for node in tree.body
              if isinstance(node, ast.Assign)}
    algo, name = Path(config).parent.name, Path(config).stem
    assert ast.literal_eval(values['_base_']) == [
        f'../_base_/experiments/{name}.py', f'../_base_/distill/{algo}.py']
    assert [k.arg for k in values['model'].keywords] == ['distiller']


# ----------------------------------------- other launchers: mmpretrain's
@functools.lru_cache()
def _mmpretrain_train_script():
    """mmpretrain's own tools/train.py, as mim installs it."""
    spec = importlib.util.spec_from_file_location(
        '_mmpretrain_train', MIM / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('config', CONFIGS)
def test_dataloaders_accept_mmpretrain_train_script_defaults(
        config, monkeypatch):
    """mmpretrain's tools/train.py (and mim train mmpretrain) turns on
    persistent_workers and pin_memory unless a config sets them; torch
    refuses persistent workers without workers."""
    script = _mmpretrain_train_script()
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', ['train.py', str(ROOT / config)])
    cfg = script.merge_args(load(config), script.parse_args())
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        torch.utils.data.DataLoader(
            range(2), num_workers=loader.num_workers,
            persistent_workers=loader.persistent_workers)


# --------------------------------------------------------- teacher checks
@pytest.mark.parametrize('config', [c for c in DISTILL if TEACHER_CKPT.match(
    load(c).model.teacher_ckpt or '')])
def test_missing_local_teacher_is_named(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative work_dirs path is not there
    cfg = load(config)
    with pytest.raises(FileNotFoundError) as err:
        check_teacher(cfg)
    msg = str(err.value)
    assert 'does not exist' in msg and cfg.model.teacher_ckpt in msg
    assert 'configs/teachers/' in msg


@pytest.fixture(scope='module')
def cub(tmp_path_factory):
    return tiny_cub(tmp_path_factory.mktemp('data') / 'cub')


def test_train_stops_on_a_missing_teacher_before_the_runner(cub, tmp_path):
    cfg = tiny_config('configs/figkd/cub_r50_r18.py', cub, tmp_path / 'x.py')
    recipe = load('configs/figkd/stanford_cars_r50_r18.py').model.teacher_ckpt
    missing = tmp_path / recipe  # the recipe's path, surely absent
    proc = run_tool('tools/train.py', cfg, '--work-dir', tmp_path / 'work',
                    '--cfg-options', f'model.teacher_ckpt={missing}',
                    check=False)
    assert proc.returncode != 0
    assert 'does not exist' in proc.stderr and str(missing) in proc.stderr
    assert not (tmp_path / 'work').exists()


# ------------------------------------------------- training and hand-off
@pytest.fixture(scope='module')
def figkd_run(cub, tmp_path_factory):
    """configs/figkd/cub_r50_r18.py with its real ResNet-50 -> ResNet-18, one
    epoch (two iterations of 8 images) on a tiny generated CUB."""
    tmp = tmp_path_factory.mktemp('figkd')
    cfg_path = tiny_config('configs/figkd/cub_r50_r18.py', cub,
                           tmp / 'figkd.py', epochs=1, batch_size=8)
    cfg = Config.fromfile(cfg_path)
    assert cfg.model.teacher.backbone.depth == 50
    assert cfg.model.architecture.backbone.depth == 18
    work = tmp / 'work'
    proc = run_tool('tools/train.py', cfg_path, '--work-dir', work)
    assert 'distill.loss_figkd' in proc.stdout + proc.stderr
    return cfg, cfg_path, work


def _distilled(cfg, work):
    """The MMRazor model of the config, loaded from epoch_1.pth."""
    model_cfg = offline_model_cfg(cfg)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(model_cfg)
    load_checkpoint(model, str(work / 'epoch_1.pth'), map_location='cpu',
                    strict=True)
    model.eval()  # not chained: MMRazor's train() returns None
    return model


def _batch(cfg, n=4):
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset.to_dict())
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(ds_cfg)
    return pseudo_collate([dataset[i] for i in range(n)]), dataset


def test_student_checkpoint_loads_in_mmpretrain_and_predicts_exactly(
        figkd_run):
    cfg, _, work = figkd_run
    ckpt = work / 'student_epoch_1.pth'
    assert ckpt.is_file() and (work / 'student.py').is_file()
    distilled = _distilled(cfg, work)
    student = mmpretrain.get_model(str(work / 'student.py'),
                                   pretrained=str(ckpt), device='cpu').eval()
    theirs = distilled.architecture.state_dict()
    ours = student.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    batch, _ = _batch(cfg)
    with torch.no_grad():
        x_distilled = distilled.data_preprocessor(batch, False)['inputs']
        x_student = student.data_preprocessor(batch, False)['inputs']
        assert torch.equal(x_distilled, x_student)
        logits_distilled = distilled.architecture(x_distilled, mode='tensor')
        logits_student = student(x_student, mode='tensor')
        assert torch.equal(logits_distilled, logits_student)
        pred_distilled = distilled.test_step(batch)
        pred_student = student.test_step(batch)
    for a, b in zip(pred_distilled, pred_student):
        assert torch.equal(a.pred_score, b.pred_score)
        assert torch.equal(a.pred_label, b.pred_label)


def test_student_runs_in_image_classification_inferencer(figkd_run):
    from mmpretrain import ImageClassificationInferencer
    cfg, _, work = figkd_run
    inferencer = ImageClassificationInferencer(
        model=str(work / 'student.py'),
        pretrained=str(work / 'student_epoch_1.pth'), device='cpu')
    batch, dataset = _batch(cfg, n=1)
    image = dataset.get_data_info(0)['img_path']
    result, = inferencer(image)
    assert 0 <= result['pred_label'] < 4
    # The same scores as the distilled model's student on that image.
    with torch.no_grad():
        expected = _distilled(cfg, work).test_step(batch)[0].pred_score
    assert torch.allclose(torch.as_tensor(result['pred_scores']), expected,
                          atol=1e-6)

