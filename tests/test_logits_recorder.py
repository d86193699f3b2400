"""LogitsRecorder on real mmpretrain classifiers."""
import pytest
import torch
from mmrazor.models.task_modules import RecorderManager
from mmrazor.registry import TASK_UTILS
from torch import nn

from figkd_mmrazor.recorders import LogitsRecorder


def _classifier(head):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=head)).eval()


HEADS = [
    dict(type='LinearClsHead', num_classes=7, in_channels=512),
    dict(type='StackedLinearClsHead', num_classes=7, in_channels=512,
         mid_channels=[32]),
]


@pytest.mark.parametrize('head', HEADS, ids=lambda h: h['type'])
def test_records_the_head_output_of_mmpretrain_classifiers(head):
    model = _classifier(head)
    manager = RecorderManager(dict(logits=dict(type='Logits')))
    manager.initialize(model)
    images = torch.randn(2, 3, 32, 32)
    with manager, torch.no_grad():
        logits = model(images, mode='tensor')
    recorded = manager.get_recorder('logits').get_record_data()
    assert recorded.shape == (2, 7)
    torch.testing.assert_close(recorded, logits, rtol=0, atol=0)


def test_vision_transformer_head():
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch='deit-tiny',
                      img_size=32, patch_size=8),
        head=dict(type='VisionTransformerClsHead', num_classes=5,
                  in_channels=192))).eval()
    recorder = TASK_UTILS.build(dict(type='LogitsRecorder'))
    recorder.initialize(model)
    with recorder, torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    torch.testing.assert_close(recorder.get_record_data(), logits)


class _WithUnusedModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 3)
        self.unused = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(x)


class _TupleHead(nn.Module):
    def forward(self, x):
        return x.half(), -x


def test_output_idx_picks_from_tuples_and_records_float32():
    model = nn.Sequential()
    model.add_module('head', _TupleHead())
    recorder = LogitsRecorder(output_idx=0)
    recorder.initialize(model)
    x = torch.randn(2, 3)
    with recorder:
        model(x)
    record = recorder.get_record_data()
    assert record.dtype == torch.float32
    torch.testing.assert_close(record, x.half().float())
    plain = LogitsRecorder()
    plain.initialize(model)
    with pytest.raises(TypeError, match='set `output_idx`'):
        with plain:
            model(x)


def test_unknown_source_lists_closest_names():
    model = _classifier(HEADS[0])
    with pytest.raises(ValueError, match=r"no module named 'haed'.*'head'"):
        LogitsRecorder(source='haed').initialize(model)


def test_module_that_never_runs_is_a_clear_error():
    model = _WithUnusedModule()
    recorder = LogitsRecorder(source='unused')
    recorder.initialize(model)
    with recorder:
        model(torch.randn(2, 4))
    with pytest.raises(RuntimeError, match="'unused' of _WithUnusedModule "
                                           'did not run during the forward'):
        recorder.get_record_data()
