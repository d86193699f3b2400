"""OpenMMLab's own entry points run the recipes: the import hook, MMRazor's
and mmpretrain's tools/train.py, and the files MIM reads.

Everything runs in fresh interpreters started the way a user starts them:
no PYTHONPATH, working directory outside the repository, so what is tested
is the installed package (the editable install of ``make test``).
"""
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import mmpretrain
import mmrazor
import pytest

import figkd_mmrazor
from tiny import ROOT, tiny_glyphs

HOOK_PTH = 'figkd_mmrazor_hook.pth'


def python(*args, cwd, pythonpath=None, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    if pythonpath:
        env['PYTHONPATH'] = str(pythonpath)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_code(code, cwd, **kwargs):
    proc = python('-c', textwrap.dedent(code), cwd=cwd, **kwargs)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


# --- the import hook ---------------------------------------------------------

def test_hook_pth_is_installed_and_recorded_for_uninstall():
    # The installed distribution, not an egg-info a build left in the tree.
    dist, = importlib.metadata.distributions(
        name='figkd_mmrazor', path=[sysconfig.get_paths()['purelib']])
    # RECORD is what `pip uninstall figkd_mmrazor` removes.
    recorded = [f for f in dist.files if f.name == HOOK_PTH]
    assert recorded, f'{HOOK_PTH} is not in RECORD: uninstall would keep it'
    path = recorded[0].locate()
    assert Path(path).parent.name == 'site-packages', path
    assert Path(path).read_text().strip().startswith(
        'import figkd_mmrazor_hook;')


def test_interpreter_start_installs_the_finder_and_imports_nothing_heavy(
        tmp_path):
    out = run_code('''
        import sys
        print(any(type(f).__name__ == 'MMRazorQuantizationFinder'
                  for f in sys.meta_path))
        print(sorted(m for m in ('torch', 'numpy', 'mmrazor', 'mmengine',
                                 'figkd_mmrazor') if m in sys.modules))
    ''', cwd=tmp_path)
    assert out.split('\n')[:2] == ['True', '[]']


def test_fresh_interpreter_imports_mmrazor_models_with_the_hook_only(tmp_path):
    # MMRazor's own tools/train.py starts with register_all_modules(), i.e.
    # `import mmrazor.models`, before any config can import the plugin.
    out = run_code('''
        import sys
        import figkd_mmrazor_hook
        try:
            sys.meta_path = [f for f in sys.meta_path if not isinstance(
                f, figkd_mmrazor_hook.MMRazorQuantizationFinder)]
            import mmrazor.models
            print('imports-without-hook')
        except ImportError:
            print('fails-without-hook')
    ''', cwd=tmp_path)
    without_hook = out.strip()
    out = run_code('''
        from mmrazor.utils import register_all_modules
        register_all_modules(False)
        from mmrazor.models import SingleTeacherDistill
        import mmrazor.structures.quantization as quantization
        print('stand-in' if 'Stand-in' in (quantization.__doc__ or '')
              else 'real')
        print(type(quantization.__loader__).__name__)
    ''', cwd=tmp_path)
    used, loader = out.split('\n')[:2]
    # The stand-in is used exactly where MMRazor's quantization fails.
    expected = {'fails-without-hook': 'stand-in',
                'imports-without-hook': 'real'}[without_hook]
    assert used == expected
    assert loader != '_QuantizationLoader'


def _fake_mmrazor(root: Path, quantization_init: str, extra=None) -> Path:
    """A stand-in mmrazor package tree whose quantization does ``...``."""
    package = root / 'mmrazor' / 'structures' / 'quantization'
    package.mkdir(parents=True)
    (root / 'mmrazor' / '__init__.py').write_text('')
    (root / 'mmrazor' / 'structures' / '__init__.py').write_text(
        'from .quantization import *\nSTRUCTURES_OK = True\n')
    (package / '__init__.py').write_text(textwrap.dedent(quantization_init))
    for name, text in (extra or {}).items():
        (package / name).write_text(textwrap.dedent(text))
    return root


def test_hook_changes_nothing_where_quantization_imports(tmp_path):
    root = _fake_mmrazor(tmp_path / 'site', '''
        from .qconfig import QConfigHandler
        __all__ = ['QConfigHandler']
    ''', {'qconfig.py': 'class QConfigHandler:\n    pass\n'})
    out = run_code('''
        import importlib.machinery, sys
        import mmrazor.structures as structures
        q = sys.modules['mmrazor.structures.quantization']
        print(structures.STRUCTURES_OK, structures.QConfigHandler.__module__)
        print(type(q.__loader__) is importlib.machinery.SourceFileLoader,
              q.__spec__.loader is q.__loader__,
              'mmrazor.structures.quantization.qconfig' in sys.modules)
    ''', cwd=tmp_path, pythonpath=root)
    assert out.split('\n')[:2] == [
        'True mmrazor.structures.quantization.qconfig', 'True True True']


def test_hook_replaces_a_quantization_that_fails_to_import(tmp_path):
    root = _fake_mmrazor(tmp_path / 'site', '''
        from .first import *
        from .second import *
    ''', {'first.py': 'FIRST = 1\n',
          'second.py': 'raise ImportError("torch API removed")\n'})
    out = run_code('''
        import sys
        import mmrazor.structures as structures
        import figkd_mmrazor_hook
        q = sys.modules['mmrazor.structures.quantization']
        print(structures.STRUCTURES_OK, structures.quantization is q)
        print(q.__doc__)
        print(sorted(m for m in sys.modules if m.startswith(
            'mmrazor.structures.quantization.')))
        try:
            import mmrazor.structures.quantization.first
        except ImportError:
            print('submodules fail cleanly')
        print(isinstance(q.QConfigHandler, type))
        import importlib.util
        print(importlib.util.find_spec(q.__name__).origin)
    ''', cwd=tmp_path, pythonpath=root)
    lines = out.split('\n')
    assert lines[0] == 'True True'
    assert 'Stand-in' in lines[1] and 'torch API removed' in lines[1]
    assert lines[2:6] == ['[]', 'submodules fail cleanly', 'True',
                          'figkd_mmrazor_hook']


def test_hook_lets_other_errors_through(tmp_path):
    # Only an ImportError means "torch lacks the API"; a bug in the module
    # must surface as itself, not as a stand-in.
    root = _fake_mmrazor(tmp_path / 'site', '1 / 0\n')
    proc = python('-c', 'import mmrazor.structures', cwd=tmp_path,
                  pythonpath=root)
    assert proc.returncode == 1
    assert 'ZeroDivisionError' in proc.stderr


# --- MIM's files in the installed package -----------------------------------

def test_installed_package_carries_configs_and_tools_for_mim():
    mim = Path(figkd_mmrazor.__file__).parent / '.mim'
    assert (mim / 'configs' / 'figkd' / 'cub_r50_r18.py').is_file()
    assert (mim / 'tools' / 'train.py').is_file()
    assert (mim / 'tools' / 'test.py').is_file()
    if (ROOT / 'model-index.yml').is_file():
        assert (mim / 'model-index.yml').is_file()


# --- MMRazor's and mmpretrain's own train scripts ----------------------------

@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return tiny_glyphs(tmp_path_factory.mktemp('entry') / 'glyphs')


def _train_with(script: Path, tiny_data, work_dir: Path):
    """One epoch of the demo FiGKD recipe under ``script``, untouched but for
    the data, the epochs and the teacher checkpoint (none: no teacher run)."""
    assert script.is_file(), f'{script} is missing from the installed package'
    root = str(tiny_data)
    proc = python(
        str(script), str(ROOT / 'configs' / 'demo' / 'figkd.py'),
        '--work-dir', str(work_dir), '--cfg-options',
        *[f'{loader}.dataset.{key}={value}'
          for loader in ('train_dataloader', 'val_dataloader',
                         'test_dataloader')
          for key, value in (('data_root', root),
                             ('classes', f'{root}/class_names.txt'))],
        'model.teacher_ckpt=None', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', cwd=work_dir.parent)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'distill.loss_figkd' in log, log[-3000:]
    assert 'teacher.accuracy/top1' in log, log[-3000:]
    assert (work_dir / 'epoch_1.pth').is_file()


def test_mmrazor_train_script_runs_a_figkd_recipe(tiny_data, tmp_path):
    script = Path(mmrazor.__file__).parent / '.mim' / 'tools' / 'train.py'
    _train_with(script, tiny_data, tmp_path / 'work')


def test_mmpretrain_train_script_runs_a_figkd_recipe(tiny_data, tmp_path):
    # mmpretrain's script turns on persistent_workers unless the config says
    # otherwise: the recipe must run without --no-persistent-workers.
    script = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / 'train.py'
    _train_with(script, tiny_data, tmp_path / 'work')
