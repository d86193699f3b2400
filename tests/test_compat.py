"""The upstream faults that figkd_mmrazor.compat absorbs."""
import re

import pytest
import torch

from figkd_mmrazor import compat


def test_mmrazor_distillation_imports_on_this_torch():
    from mmrazor.models import (ConfigurableDistiller, DKDLoss, KLDivergence,
                                SingleTeacherDistill)
    assert all([ConfigurableDistiller, DKDLoss, KLDivergence,
                SingleTeacherDistill])


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
