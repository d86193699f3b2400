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
    """A head that returns (logits, something else), as ConformerHead."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        logits = self.fc(x)
        return logits.half(), -logits


def _tuple_model():
    model = nn.Sequential()
    model.add_module('head', _TupleHead())
    return model


def _distiller(data_idx):
    from mmrazor.models import ConfigurableDistiller
    source = dict(recorder='logits', data_idx=data_idx)
    return ConfigurableDistiller(
        student_recorders=dict(logits=dict(type='Logits')),
        teacher_recorders=dict(logits=dict(type='Logits')),
        distill_losses=dict(loss_figkd=dict(type='FiGKDLoss')),
        loss_forward_mappings=dict(loss_figkd=dict(
            preds_S=dict(from_student=True, **source),
            preds_T=dict(from_student=False, **source))))


def test_tuple_output_is_picked_by_data_idx_in_loss_forward_mappings():
    # MMRazor's data_idx is the one way to pick the logits from a tuple;
    # the loss gets them in float32, with their graph.
    from figkd_mmrazor.losses import FiGKDLoss
    student, teacher = _tuple_model(), _tuple_model()
    distiller = _distiller(data_idx=0)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    x = torch.randn(2, 4)
    with distiller.teacher_recorders, torch.no_grad():
        teacher_logits = teacher(x)[0]
    with distiller.student_recorders:
        student_logits = student(x)[0]
    record = distiller.get_record('logits', from_student=True, data_idx=0)
    assert record.dtype == torch.float32
    torch.testing.assert_close(record, student_logits.float(), rtol=0,
                               atol=0)
    loss = distiller.compute_distill_losses()['loss_figkd']
    torch.testing.assert_close(
        loss, FiGKDLoss()(student_logits.float(), teacher_logits.float()))
    loss.backward()
    assert student.head.fc.weight.grad.abs().sum() > 0

    # Without data_idx the tuple reaches no loss: a clear error instead.
    distiller = _distiller(data_idx=None)
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teacher)
    with distiller.student_recorders, distiller.teacher_recorders:
        student(x), teacher(x)
    with pytest.raises(TypeError, match=r"'head' returned a tuple, not a "
                                        r'logits tensor.*`data_idx`'):
        distiller.compute_distill_losses()


@pytest.mark.parametrize('head', HEADS[:1], ids=lambda h: h['type'])
def test_record_keeps_the_graph_so_the_loss_reaches_the_model(head):
    # A recorder that detaches (or copies without autograd) leaves the
    # distillation loss without a gradient: KD would silently become CE.
    model = _classifier(head).train()
    recorder = LogitsRecorder()
    recorder.initialize(model)
    with recorder:
        model(torch.randn(2, 3, 32, 32), mode='tensor')
    record = recorder.get_record_data()
    assert record.requires_grad
    record.square().sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert model.head.fc.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0


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
