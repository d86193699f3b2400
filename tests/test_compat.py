"""The upstream faults that figkd_mmrazor.compat absorbs."""
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from figkd_mmrazor import compat


def test_mmrazor_distillation_imports_on_this_torch():
    from mmrazor.models import (ConfigurableDistiller, DKDLoss, KLDivergence,
                                SingleTeacherDistill)
    from mmrazor.registry import MODELS
    for cls in (ConfigurableDistiller, DKDLoss, KLDivergence,
                SingleTeacherDistill):
        # MMRazor's own classes, registered where configs find them; a
        # stand-in that reached beyond quantization would fail here.
        assert cls.__module__.startswith('mmrazor.models.'), cls
        assert MODELS.get(f'mmrazor.{cls.__name__}') is cls


def test_importing_the_plugin_installs_the_hook_where_the_pth_did_not_run(
        tmp_path):
    # As with a source tree on PYTHONPATH, or an interpreter that skipped
    # site-packages' .pth files: importing figkd_mmrazor is then what lets
    # mmrazor.models import.
    code = textwrap.dedent('''
        import sys
        import figkd_mmrazor_hook
        sys.meta_path = [f for f in sys.meta_path if not isinstance(
            f, figkd_mmrazor_hook.MMRazorQuantizationFinder)]
        import figkd_mmrazor
        import mmrazor.models
    ''')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    # Without the plugin this fails on torch >= 2.1: test_entry_points.py ::
    # test_fresh_interpreter_imports_mmrazor_models_with_the_hook_only.
    proc = subprocess.run([sys.executable, '-c', code], cwd=tmp_path,
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_using_quantization_raises_a_clear_error():
    quantization = pytest.importorskip('mmrazor.structures.quantization')
    if 'Stand-in' not in (quantization.__doc__ or ''):
        pytest.skip('MMRazor quantization works with this torch')
    match = rf'torch {re.escape(torch.__version__)} is installed.*torch 1\.13'
    with pytest.raises(compat.QuantizationUnavailableError, match=match):
        quantization.QConfigHandler(dict(w_qscheme={}, a_qscheme={}))
    with pytest.raises(compat.QuantizationUnavailableError, match=match):
        quantization.BackendConfigs['native']
    # Through the registry, as a config would use it.
    from mmrazor.registry import MODELS
    with pytest.raises(compat.QuantizationUnavailableError, match=match):
        MODELS.build(dict(type='mmrazor.OpenVINOQuantizer',
                          global_qconfig=dict(w_qscheme={}, a_qscheme={})))
