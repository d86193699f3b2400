"""The upstream faults that figkd_mmrazor.compat absorbs."""
import os
import re

import pytest
import torch
from mmengine.runner import CheckpointLoader

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


def _saved(tmp_path, obj, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    path = _saved(tmp_path, {'state_dict': {'w': torch.ones(2)},
                             'hook': os.system})
    with pytest.raises(compat.CheckpointRefusedError) as err:
        CheckpointLoader.load_checkpoint(path)
    message = str(err.value)
    assert path in message and 'system' in message
    assert 'arbitrary code' in message


def test_plain_checkpoint_loads_with_weights_only(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer
    buffer = HistoryBuffer()
    buffer.update(1.5)
    state = {'state_dict': {'w': torch.arange(3.0)},
             'message_hub': {'log_scalars': {'loss': buffer},
                             'runtime_info': {'x': np.float64(2.0),
                                              'a': np.arange(3)}}}
    loaded = CheckpointLoader.load_checkpoint(_saved(tmp_path, state))
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5
    assert loaded['message_hub']['runtime_info']['x'] == 2.0


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = _saved(tmp_path, {'state_dict': {'w': torch.ones(1000)}})
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match=f'{path}.*truncated or corrupted'):
        CheckpointLoader.load_checkpoint(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))
