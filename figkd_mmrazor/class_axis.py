"""Class axes derived from the teacher: ``class_order='teacher'`` and
``class_graph='teacher'``.

FiGKD's bands depend on which classes are neighbours; on most data sets the
index order means nothing. ``FiGKDLoss(class_order='teacher')`` puts the
classes in the spectral order of the teacher's class similarity
(:func:`figkd_mmrazor.analysis.class_order.spectral_order`);
``GraphFiGKDLoss(class_graph='teacher')`` splits the bands over that
similarity itself. The similarity is the cosine of the rows of the teacher's
classifier, the mean row removed (:func:`teacher_similarity`): it needs no
pass over data, so it is the same for a live and a replaying run, on every
rank, and before the first step.

:func:`apply_to_config` (``tools/train.py`` and ``tools/test.py``, before
the model is built) replaces ``'teacher'`` by
``dict(teacher_checkpoint=PATH, teacher_sha256=SHA)``, so the config a run
saves says which teacher file, with which content, the axis came from. The
loss derives the axis from it when it is built (:func:`from_teacher`),
refusing a file whose content changed, and keeps the result as a buffer: it
is in every checkpoint, and a resumed run whose axis differs is refused (a
``load_state_dict`` pre-hook of the losses). An order or graph file that
records ``teacher_sha256`` (``tools/analysis/class_order.py`` writes it) is
refused here when this run's teacher is another.
"""
import json
import os.path as osp

import numpy as np

TEACHER = 'teacher'
SETTINGS = ('class_order', 'class_graph')
UNRESOLVED = (
    "{key}='teacher' is derived from model.teacher_ckpt before the model is "
    'built, by figkd_mmrazor.class_axis.apply_to_config(cfg) (tools/train.py '
    'and tools/test.py call it). Building the loss by itself, give the '
    '{key} itself.')


class ClassAxisError(ValueError):
    """A class order or graph that does not belong to this run's teacher."""


def teacher_similarity(checkpoint) -> np.ndarray:
    """(C, C) float64 cosine similarity of the rows of the classifier in a
    teacher checkpoint (or a distillation checkpoint's teacher), the mean
    row removed, rounded to 12 decimals so that float noise of the machine
    does not change an order derived from it."""
    from .analysis.class_order import cosine_similarity_matrix
    from .analysis.classifier_logits import classifier_state
    from .checkpoints import classifier_weight, load_checkpoint
    weight = classifier_weight(classifier_state(load_checkpoint(checkpoint)))
    return cosine_similarity_matrix(weight.double().numpy(),
                                    center=True).round(12)


def from_teacher(spec: dict) -> np.ndarray:
    """The similarity :func:`apply_to_config`'s ``spec`` names, after
    checking that the file still holds what the config recorded."""
    from .replay.fingerprint import teacher_sha256
    path = spec['teacher_checkpoint']
    found = teacher_sha256(path)
    if found != spec['teacher_sha256']:
        raise ClassAxisError(
            f'The class axis of this config was derived from the teacher '
            f'{path} with sha256 {spec["teacher_sha256"][:12]}..., but the '
            f'file now has sha256 {found[:12]}...: the teacher changed. '
            'Train with the teacher the run started with, or start the run '
            'over (--start-over) to derive the axis from this one.')
    return teacher_similarity(path)


def is_from_teacher(value) -> bool:
    return isinstance(value, dict) and 'teacher_checkpoint' in value


def apply_to_config(cfg):
    """Resolve ``'teacher'`` class axes of the distillation losses in
    ``cfg`` (in place) and refuse order or graph files derived from another
    teacher. Returns ``cfg``."""
    model = cfg.get('model') or {}
    losses = (model.get('distiller') or {}).get('distill_losses') or {}
    for name, loss in losses.items():
        for key in SETTINGS:
            value = loss.get(key) if isinstance(loss, dict) else None
            if value is None or is_from_teacher(value):
                continue
            where = f'model.distiller.distill_losses.{name}.{key}'
            if isinstance(value, str) and value == TEACHER:
                loss[key] = _spec(model, where)
            elif isinstance(value, str) and osp.isfile(value):
                _check_file(model, value, where)
    return cfg


def _spec(model, where) -> dict:
    from .replay.fingerprint import teacher_sha256
    checkpoint = model.get('teacher_ckpt')
    if not checkpoint:
        raise ClassAxisError(
            f"{where}='teacher' derives the class axis from the teacher's "
            'classifier, so model.teacher_ckpt must name its checkpoint; '
            'give it, or give the order (a list or a file) yourself.')
    if '://' not in str(checkpoint):
        checkpoint = osp.abspath(osp.expanduser(str(checkpoint)))
    return dict(teacher_checkpoint=str(checkpoint),
                teacher_sha256=teacher_sha256(checkpoint))


def _check_file(model, path, where) -> None:
    from .replay.fingerprint import teacher_sha256
    try:
        with open(path) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return  # the loss reports a malformed file when it reads it
    sha = recorded.get('teacher_sha256') if isinstance(recorded,
                                                       dict) else None
    teacher = model.get('teacher_ckpt')
    if sha and teacher and teacher_sha256(teacher) != sha:
        raise ClassAxisError(
            f'{where}={path} was derived from a teacher with sha256 '
            f'{sha[:12]}..., not from this run\'s model.teacher_ckpt='
            f'{teacher}: it is stale. Derive it again from this teacher '
            f"({where.rsplit('.', 1)[1]}='teacher', or "
            'tools/analysis/class_order.py CONFIG TEACHER --out FILE).')
