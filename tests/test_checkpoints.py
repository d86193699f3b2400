"""figkd_mmrazor.checkpoints and its users: no checkpoint runs code, whatever
the scheme; a checkpoint that does not fit its model is refused before the
Runner exists; the student checkpoint is exactly the distilled student.

URL checkpoints are placed in a temporary torch hub cache ($TORCH_HOME) under
the URL's file name, and any download attempt fails the test: no network.
mmengine's own loading with ``strict=True`` is the oracle for "fits".
"""
import copy
import importlib.util
import os
from collections import OrderedDict
from pathlib import Path

import mmpretrain
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader
from mmengine.runner import load_checkpoint as mmengine_load_checkpoint
from mmengine.runner import save_checkpoint
from mmrazor.registry import MODELS

from figkd_mmrazor import checkpoints
from figkd_mmrazor.checkpoints import (CheckpointMismatchError,
                                       CheckpointRefusedError)
from figkd_mmrazor.preflight import check_before_testing, check_teacher
from tiny import ROOT, run_tool, tiny_config, tiny_cub

RECIPE_STUDENT_URL = ('https://download.openmmlab.com/mmclassification/v0/'
                      'resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth')


class _RunsCommand:
    """Unpickles as ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def _evil(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A checkpoint that runs ``touch marker`` when unpickled; ``legacy``:
    in torch's pre-1.6 format (not a zip), which torch cannot scan for
    unsafe globals before loading."""
    torch.save({'state_dict': {'w': torch.ones(2)},
                'meta': _RunsCommand(f'touch {marker}')}, path,
               _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize('legacy', [False, True])
def test_the_evil_file_would_run_its_command(tmp_path, legacy):
    """The tests below are meaningful: unpickled as torch.load(
    weights_only=False) would, the file runs its command."""
    marker = tmp_path / 'ran'
    torch.load(_evil(tmp_path / 'evil.pth', marker, legacy),
               weights_only=False)
    assert marker.exists()


# ----------------------------------------------------------------- loading
@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache; ``hub(url, obj)`` caches ``obj`` for
    ``url`` where torch.hub keeps it, and downloads fail."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    folder = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    folder.mkdir(parents=True)

    def no_network(url, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)

    def cache(url, obj=None, save=torch.save):
        path = folder / url.rsplit('/', 1)[1]
        if obj is not None:
            save(obj, str(path))
        return path

    return cache


def _url_of(name: str) -> str:
    """The URL mmengine's tables give a model-zoo name."""
    from mmengine.runner import checkpoint as tables
    scheme, model = name.split('://')
    table = {'torchvision': tables.get_torchvision_models,
             'open-mmlab': tables.get_external_models,
             'mmcls': tables.get_mmcls_models}[scheme]()
    return table[model]


SCHEMES = [RECIPE_STUDENT_URL, 'torchvision://resnet18',
           'open-mmlab://vgg16_caffe', 'mmcls://vgg11']


@pytest.mark.parametrize('name', SCHEMES)
def test_url_checkpoint_with_pickled_callable_is_refused(name, hub,
                                                          tmp_path):
    url = name if name.startswith('https://') else _url_of(name)
    marker = tmp_path / 'ran'
    cached = _evil(hub(url), marker)
    with pytest.raises(CheckpointRefusedError) as err:
        CheckpointLoader.load_checkpoint(name)  # as mmengine loads it
    assert url in str(err.value) and str(cached) in str(err.value)
    assert 'system' in str(err.value)
    with pytest.raises(CheckpointRefusedError):
        checkpoints.load_checkpoint(name)
    assert not marker.exists()


def test_s3_checkpoint_is_loaded_weights_only(tmp_path, monkeypatch):
    """``s3://`` goes through mmengine's petrel file backend (here a stand-in
    that serves files from a folder) and is unpickled weights only."""
    from mmengine.fileio.backends import registry_utils

    class FolderBackend:
        def __init__(self, **kwargs):
            pass

        def get(self, uri):
            return (tmp_path / uri.rsplit('/', 1)[1]).read_bytes()

    monkeypatch.setitem(registry_utils.backends, 'petrel', FolderBackend)
    torch.save({'state_dict': {'w': torch.arange(3.0)}}, tmp_path / 'ok.pth')
    loaded = CheckpointLoader.load_checkpoint('s3://bucket/ok.pth')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
    marker = tmp_path / 'ran'
    _evil(tmp_path / 'evil.pth', marker)
    with pytest.raises(CheckpointRefusedError, match='s3://bucket/evil.pth'):
        CheckpointLoader.load_checkpoint('s3://bucket/evil.pth')
    assert not marker.exists()


def test_local_checkpoint_with_pickled_callable_is_refused(tmp_path):
    marker = tmp_path / 'ran'
    path = str(_evil(tmp_path / 'ckpt.pth', marker))
    with pytest.raises(CheckpointRefusedError) as err:
        CheckpointLoader.load_checkpoint(path)
    message = str(err.value)
    assert path in message and 'system' in message
    assert 'arbitrary code' in message
    assert not marker.exists()
    # The old format cannot be scanned first; weights-only loading refuses.
    path = str(_evil(tmp_path / 'old.pth', marker, legacy=True))
    with pytest.raises(RuntimeError, match='could not be read weights-only'):
        CheckpointLoader.load_checkpoint(path)
    assert not marker.exists()


def _mmengine_saved(tmp_path) -> dict:
    """A checkpoint as mmengine's Runner saves one: meta, weights, optimizer
    and message hub (HistoryBuffer, numpy values)."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    message_hub = MessageHub.get_instance('test_checkpoints')
    message_hub.update_scalar('train/loss', 1.5)
    message_hub.update_info('iter', np.int64(3))
    message_hub.update_info('lr', np.float64(0.1))
    return dict(meta=dict(epoch=1, iter=3, seed=0, cfg='model = {}'),
                state_dict=model.state_dict(),
                optimizer=optimizer.state_dict(),
                message_hub=message_hub.state_dict())


def test_mmengine_checkpoint_loads_by_path_and_by_url(hub, tmp_path):
    saved = _mmengine_saved(tmp_path)
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(saved, str(path))
    hub(RECIPE_STUDENT_URL, saved, save=save_checkpoint)
    for name in (str(path), RECIPE_STUDENT_URL):
        loaded = CheckpointLoader.load_checkpoint(name)
        for key, value in saved['state_dict'].items():
            assert torch.equal(loaded['state_dict'][key], value)
        hub_state = loaded['message_hub']
        assert hub_state['log_scalars']['train/loss'].current() == 1.5
        assert hub_state['runtime_info']['lr'] == 0.1
        assert loaded['optimizer']['state'][0]['momentum_buffer'].shape == (
            2, 3)


def _classifier(**changes):
    """The demo pair's teacher (an mmpretrain ResNet_CIFAR classifier, 50
    classes) with nested ``changes``."""
    cfg = copy.deepcopy(Config.fromfile(
        ROOT / 'configs/demo/figkd.py').model.teacher.to_dict())
    for part, values in changes.items():
        if isinstance(values, dict) and isinstance(cfg.get(part), dict) \
                and values.get('type') is None:
            cfg[part].update(values)
        else:
            cfg[part] = values
    return cfg


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(copy.deepcopy(cfg))


def test_recipe_student_weights_load_by_url_through_init_cfg(hub, tmp_path):
    """An honest mmpretrain checkpoint under the recipes' student URL is
    what the student's ``init_cfg`` loads; an evil one is refused there."""
    cfg = Config.fromfile(ROOT / 'configs/_base_/pairs/r50_r18.py')
    cfg.model.architecture.head.num_classes = 10  # set by the experiments
    released = _build(cfg.model.architecture)
    state = OrderedDict(released.state_dict())
    hub(RECIPE_STUDENT_URL, dict(meta=dict(mmcls_version='0.16.0'),
                                 state_dict=state))
    student = _build(cfg.model.architecture)
    assert cfg.model.architecture.backbone.init_cfg.checkpoint == \
        RECIPE_STUDENT_URL
    student.init_weights()
    for key, value in student.backbone.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key

    marker = tmp_path / 'ran'
    _evil(hub(RECIPE_STUDENT_URL), marker)
    with pytest.raises(CheckpointRefusedError):
        _build(cfg.model.architecture).init_weights()
    assert not marker.exists()


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match=f'{path}.*truncated or corrupted'):
        CheckpointLoader.load_checkpoint(str(path))


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


# ------------------------------------------------- what checkpoints hold
def test_split_and_classifier_of_a_distillation_state():
    student, teacher = _classifier(), _classifier(
        head=dict(type='StackedLinearClsHead', num_classes=50,
                  in_channels=128, mid_channels=[32]))
    s, t = _build(student).state_dict(), _build(teacher).state_dict()
    both = {**{f'architecture.{k}': v for k, v in s.items()},
            **{f'teacher.{k}': v for k, v in t.items()}}
    got_s, got_t = checkpoints.split_distillation_state(both)
    assert got_s.keys() == s.keys() and got_t.keys() == t.keys()
    assert all(got_s[k] is s[k] for k in s)
    assert checkpoints.classifier_weight(got_s) is s['head.fc.weight']
    # A stacked head: the last layer classifies (50 rows), not the first.
    assert checkpoints.classifier_weight(got_t) is t[
        'head.layers.1.fc.weight']
    assert t['head.layers.1.fc.weight'].shape == (50, 32)
    with pytest.raises(ValueError, match="'architecture.'.*'teacher.'"):
        checkpoints.split_distillation_state(s)
    with pytest.raises(ValueError, match='No classifier weight'):
        checkpoints.classifier_weight(both)


# ------------------------------------------------------ teacher checks
def _demo_cfg(teacher_ckpt, **teacher_changes):
    cfg = Config.fromfile(ROOT / 'configs/demo/figkd.py')
    cfg.model.teacher = _classifier(**teacher_changes)
    cfg.model.teacher_ckpt = str(teacher_ckpt)
    return cfg


def _saved_classifier(path, **changes):
    torch.save(dict(meta=dict(epoch=1),
                    state_dict=_build(_classifier(**changes)).state_dict()),
               path)
    return path


def _non_tensor_bias(path):
    state = _build(_classifier()).state_dict()
    state['head.fc.bias'] = state['head.fc.bias'].tolist()
    torch.save(dict(state_dict=state), path)
    return path


def _distillation_state(cfg):
    model = copy.deepcopy(cfg.model.to_dict())
    model['teacher_ckpt'] = None
    return _build(model).state_dict()


def _torchvision_state(path):
    import torchvision
    torch.save(torchvision.models.resnet18(num_classes=50).state_dict(), path)
    return path


def _module_prefixed(path):
    state = _build(_classifier()).state_dict()
    torch.save({f'module.{k}': v for k, v in state.items()}, path)
    return path


def _student_checkpoint(path):
    state = _distillation_state(Config.fromfile(
        ROOT / 'configs/demo/figkd.py'))
    torch.save(checkpoints.student_checkpoint(dict(state_dict=state)), path)
    return path


def _whole_distillation(path):
    state = _distillation_state(Config.fromfile(
        ROOT / 'configs/demo/figkd.py'))
    torch.save(dict(meta=dict(epoch=1), state_dict=state), path)
    return path


WIDTH8 = dict(backbone=dict(base_channels=8, stem_channels=8),
              head=dict(in_channels=64))
STACKED = dict(head=dict(type='StackedLinearClsHead', num_classes=50,
                         in_channels=128, mid_channels=[32]))
# case: (write the checkpoint, teacher config changes, phrases of the error
# or None where the teacher fits)
TEACHER_CASES = {
    'same model': (_saved_classifier, {}, None),
    'DataParallel keys': (_module_prefixed, {}, None),
    'stacked head': (lambda p: _saved_classifier(p, **STACKED), STACKED,
                     None),
    'other width': (lambda p: _saved_classifier(p, **WIDTH8), {},
                    ['mis-shaped', 'another width', 'backbone.conv1.weight '
                     '(checkpoint (8, 3, 3, 3), model (16, 3, 3, 3))']),
    'other depth': (lambda p: _saved_classifier(p, backbone=dict(depth=34)),
                    {}, ['unexpected', 'backbone.layer1.2.',
                         'another depth']),
    'a weight that is not a tensor': (
        _non_tensor_bias, {},
        ['1 mis-shaped', 'head.fc.bias (checkpoint not a tensor, model '
         '(148,))']),
    'torchvision model': (_torchvision_state, {},
                          ['torchvision', 'conv1.weight']),
    'student checkpoint': (_student_checkpoint, {},
                           ['mis-shaped', 'another width']),
    'whole distillation checkpoint': (
        _whole_distillation, {},
        ["'teacher.'", 'convert_to_student.py', "prefix='teacher.'"]),
    'other class count': (
        lambda p: _saved_classifier(p, head=dict(num_classes=7)), {},
        ['has a classifier for 7 classes, but the teacher config has '
         'num_classes=148']),
    'stacked head, other class count': (
        lambda p: _saved_classifier(
            p, head=dict(STACKED['head'], num_classes=7)), STACKED,
        ['classifier for 7 classes', 'num_classes=50']),
}


@pytest.mark.parametrize('case', TEACHER_CASES)
def test_teacher_checkpoint_is_matched_key_by_key(case, tmp_path):
    write, changes, phrases = TEACHER_CASES[case]
    path = write(tmp_path / 'teacher.pth')
    cfg = _demo_cfg(path, **changes)
    # The oracle: mmengine's own strict loading into the teacher.
    teacher = _build(cfg.model.teacher)
    try:
        mmengine_load_checkpoint(teacher, str(path), strict=True)
        fits = True
    except RuntimeError:
        fits = False
    assert fits == (phrases is None)
    if phrases is None:
        check_teacher(cfg)
        return
    with pytest.raises(CheckpointMismatchError) as err:
        check_teacher(cfg)
    message = str(err.value)
    assert f'Teacher checkpoint {path}' in message
    assert 'Likely cause' in message and 'Fix' in message
    for phrase in phrases:
        assert phrase in message


def test_old_checkpoint_fits_through_the_model_load_hooks(tmp_path):
    """Keys are matched after the modules' own load hooks, as mmengine loads:
    an mmcls-era Swin checkpoint names the last norm ``backbone.norm``,
    which mmpretrain's Swin renames. A plain key comparison would refuse."""
    swin = dict(
        _scope_='mmpretrain', type='ImageClassifier',
        backbone=dict(type='SwinTransformer', img_size=32, window_size=4,
                      arch=dict(embed_dims=16, depths=[2, 2],
                                num_heads=[1, 2]), out_indices=(1, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=50, in_channels=32))
    state = _build(swin).state_dict()
    assert 'backbone.norm1.weight' in state
    old = {k.replace('backbone.norm1.', 'backbone.norm.'): v
           for k, v in state.items()}  # and no version metadata
    path = tmp_path / 'swin_mmcls.pth'
    torch.save(dict(state_dict=old), path)
    mmengine_load_checkpoint(_build(swin), str(path), strict=True)
    cfg = _demo_cfg(path)
    cfg.model.teacher = swin
    check_teacher(cfg)
    cfg.model.teacher.head.num_classes = 7
    with pytest.raises(CheckpointMismatchError, match='for 50 classes'):
        check_teacher(cfg)


def test_distillation_teacher_taken_by_prefix_is_checked_and_loads(tmp_path):
    """The fix the message gives for a whole distillation checkpoint works:
    checked, and loaded into the teacher by mmengine."""
    path = _whole_distillation(tmp_path / 'epoch_1.pth')
    cfg = _demo_cfg('')
    cfg.model.teacher_ckpt = None
    cfg.model.teacher.init_cfg = dict(type='Pretrained', checkpoint=str(path),
                                      prefix='teacher.')
    check_teacher(cfg)
    model = _build(cfg.model)
    model.init_weights()
    saved = torch.load(path, weights_only=True)['state_dict']
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, saved[f'teacher.{key}']), key
    # The same route with a teacher of another width is refused.
    cfg.model.teacher = _classifier(
        **WIDTH8, init_cfg=cfg.model.teacher.init_cfg)
    with pytest.raises(CheckpointMismatchError,
                       match='model.teacher.init_cfg'):
        check_teacher(cfg)


def test_uncached_url_teacher_is_fetched_once_and_checked(hub, tmp_path,
                                                          monkeypatch):
    """Like mmengine, the first process of a machine downloads a URL teacher
    (before the Runner here); the others leave it to that process."""
    source = _saved_classifier(tmp_path / 'src.pth', **WIDTH8)
    url = 'https://example.com/teachers/teacher_w8.pth'
    fetched = []

    def download(src, dst, *args, **kwargs):
        fetched.append(src)
        Path(dst).write_bytes(source.read_bytes())

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    cfg = _demo_cfg(url)
    monkeypatch.setenv('LOCAL_RANK', '1')
    check_teacher(cfg)
    assert fetched == []
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(CheckpointMismatchError, match=url):
        check_teacher(cfg)
    assert fetched == [url] and hub(url).is_file()


# ----------------------------------------- a real run: hook, converter, test
@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    """configs/demo/figkd.py, one epoch on a tiny generated CUB."""
    tmp = tmp_path_factory.mktemp('demo')
    cub = tiny_cub(tmp / 'cub')
    cfg_path = tiny_config('configs/demo/figkd.py', cub, tmp / 'figkd.py',
                           epochs=1, batch_size=8)
    work = tmp / 'work'
    run_tool('tools/train.py', cfg_path, '--work-dir', work)
    return cfg_path, work


def _tool_main(name):
    spec = importlib.util.spec_from_file_location(
        f'_tool_{name}', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _architecture_by_hand(cfg_path, work):
    """The student of the distillation config, built by mmpretrain and
    loaded strictly with the ``architecture.`` tensors of epoch_1.pth."""
    cfg = Config.fromfile(cfg_path)
    student = copy.deepcopy(cfg.model.architecture.to_dict())
    student.pop('_scope_')
    student['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS as PRETRAIN_MODELS
        model = PRETRAIN_MODELS.build(student)
    saved = torch.load(work / 'epoch_1.pth', weights_only=False)
    mine = {key[len('architecture.'):]: value
            for key, value in saved['state_dict'].items()
            if key.startswith('architecture.')}
    model.load_state_dict(mine, strict=True)
    return model.eval(), saved


def test_student_checkpoint_is_exactly_the_student(demo_run):
    """student_epoch_1.pth has the student's keys, no more, no fewer
    (teacher keys would go unseen in mmpretrain's non-strict loading)."""
    cfg_path, work = demo_run
    written = torch.load(work / 'student_epoch_1.pth', weights_only=True)
    student = mmpretrain.get_model(str(work / 'student.py'),
                                   pretrained=str(work /
                                                  'student_epoch_1.pth'),
                                   device='cpu').eval()
    assert written['state_dict'].keys() == student.state_dict().keys()
    student.load_state_dict(written['state_dict'], strict=True)
    by_hand, saved = _architecture_by_hand(cfg_path, work)
    for key, value in by_hand.state_dict().items():
        assert torch.equal(written['state_dict'][key], value), key
    assert written['meta']['epoch'] == saved['meta']['epoch'] == 1
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(student(x), by_hand(x))


def test_converter_equals_an_independent_construction(demo_run, tmp_path):
    cfg_path, work = demo_run
    out, out_cfg = tmp_path / 'student.pth', tmp_path / 'student.py'
    run_tool('tools/convert_to_student.py', work / 'epoch_1.pth', out,
             '--config', cfg_path, '--config-out', out_cfg)
    converted = torch.load(out, weights_only=True)
    by_hand, saved = _architecture_by_hand(cfg_path, work)
    expected = by_hand.state_dict()
    assert converted['state_dict'].keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(converted['state_dict'][key], value), key
    assert converted['meta']['epoch'] == saved['meta']['epoch']
    loaded = mmpretrain.get_model(str(out_cfg), pretrained=str(out),
                                  device='cpu').eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), by_hand(x))

    # No overwriting without --force; not a distillation checkpoint: an
    # error that names the prefixes, and nothing written. (In-process: the
    # command line ran above.)
    convert = _tool_main('convert_to_student')
    argv = [str(a) for a in (work / 'epoch_1.pth', out, '--config', cfg_path,
                             '--config-out', out_cfg)]
    stamp = out.stat().st_mtime_ns
    with pytest.raises(SystemExit, match='already exist.*--force'):
        convert(argv)
    assert out.stat().st_mtime_ns == stamp
    convert(argv + ['--force'])
    assert out.stat().st_mtime_ns != stamp
    with pytest.raises(SystemExit, match='input checkpoint'):
        convert([str(out), str(out), '--force'])
    with pytest.raises(SystemExit, match="'architecture.'"):
        convert([str(out), str(tmp_path / 'x.pth')])
    assert not (tmp_path / 'x.pth').exists()


def test_test_tool_refuses_a_student_checkpoint_on_the_distillation_config(
        demo_run, tmp_path):
    cfg_path, work = demo_run
    proc = run_tool('tools/test.py', cfg_path, work / 'student_epoch_1.pth',
                    '--work-dir', tmp_path / 'test', check=False)
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in proc.stderr
    assert 'student.py' in proc.stderr and 'single classifier' in proc.stderr
    assert not (tmp_path / 'test').exists()  # before the Runner


def test_checkpoint_to_test_must_fit_the_config(demo_run):
    cfg_path, work = demo_run
    student_cfg = Config.fromfile(work / 'student.py')
    student_cfg.load_from = str(work / 'epoch_1.pth')
    with pytest.raises(CheckpointMismatchError,
                       match='(?s)distillation checkpoint.*convert_to_stud'):
        check_before_testing(student_cfg)
    student_cfg.load_from = str(work / 'student_epoch_1.pth')
    check_before_testing(student_cfg)
    cfg = Config.fromfile(cfg_path)
    cfg.load_from = str(work / 'epoch_1.pth')
    check_before_testing(cfg)

