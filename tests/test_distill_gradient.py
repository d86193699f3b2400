"""One training step of each demo recipe: the distillation loss trains the
student, and only the student.

A distillation loss that has no gradient (a recorder that detaches, a loss
that stops gradients into the student) leaves the student training on
cross-entropy alone, with every loss value still logged: only the gradient
shows it.
"""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from mmrazor.registry import MODELS

import figkd_mmrazor  # noqa: F401  (registers the loss and the recorder)

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ['configs/demo/figkd.py', 'configs/demo/kd.py',
           'configs/demo/dkd.py']


def build(cfg):
    model = cfg.model.to_dict()
    model['teacher_ckpt'] = None  # random teacher: no file needed
    model.setdefault('data_preprocessor', cfg.data_preprocessor.to_dict())
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        built = MODELS.build(model)
    loss_name, = cfg.model.distiller.distill_losses
    return built, f'distill.{loss_name}', cfg.data_preprocessor.num_classes


def batch(num_classes, n=4, size=32):
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                           generator=gen)
    labels = torch.randint(0, num_classes, (n, ), generator=gen)
    return dict(inputs=list(images),
                data_samples=[DataSample().set_gt_label(int(label))
                              for label in labels])


@pytest.mark.parametrize('config', RECIPES)
def test_distillation_loss_trains_the_student_and_only_the_student(config):
    cfg = Config.fromfile(ROOT / config)
    model, loss_key, num_classes = build(cfg)
    without, _, _ = build(cfg)  # for a step without the distillation loss
    for key, value in without.state_dict().items():  # the same seed
        assert torch.equal(value, model.state_dict()[key]), key
    model.train()
    data = model.data_preprocessor(batch(num_classes), training=True)
    losses = model(**data, mode='loss')
    distill = losses[loss_key]
    assert distill.requires_grad, f'{loss_key} has no gradient'
    assert distill.item() > 0

    # The distillation loss alone reaches the student's head and backbone.
    student = dict(model.architecture.named_parameters())
    grads = torch.autograd.grad(distill, list(student.values()),
                                retain_graph=True, allow_unused=True)
    grads = dict(zip(student, grads))
    for name in ('head.fc.weight', 'backbone.conv1.weight'):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    assert not any(p.requires_grad for p in model.teacher.parameters())

    # One optimizer step moves the student and not the teacher; without
    # the distillation loss (weight 0) the same step moves it elsewhere.
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(without.architecture.state_dict())
    name = loss_key.split('.', 1)[1]
    without.distiller.distill_losses[name].loss_weight = 0.0
    without.train()
    for trained in (model, without):
        params = [p for p in trained.parameters() if p.requires_grad]
        optim = OptimWrapper(torch.optim.SGD(params, lr=0.1))
        trained.train_step(batch(num_classes), optim)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    after = model.architecture.state_dict()
    for key in ('head.fc.weight', 'backbone.conv1.weight'):
        assert not torch.equal(after[key], student_before[key]), key
        assert not torch.allclose(
            after[key], without.architecture.state_dict()[key]), key
