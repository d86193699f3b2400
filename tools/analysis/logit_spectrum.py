"""Wavelet spectrum of teacher (and student) logits along the class axis.

Runs the teacher (and the student) of a distillation config, or a plain
mmpretrain classifier, over a dataset split, decomposes each logit vector
with the plugin's DWT (``[cA_n, cD_n, ..., cD_1]``, as FiGKDLoss does) and
reports per band:

* the mean energy (sum of squared coefficients per sample) of teacher and
  student logits and its fraction of the total energy (for an orthogonal
  wavelet with ``mode='periodization'`` and ``C`` divisible by ``2**level``
  the bands' energies add up to the logits' energy: Parseval);
* the teacher-student agreement: the cosine similarity of the band
  coefficients, averaged over samples, and the relative squared error
  ``mean ||s_b - t_b||^2 / mean ||t_b||^2``.

It prints a table and writes ``spectrum.json`` and ``spectrum.png`` to
``--out``. The maths is importable (``band_energies``, ``band_agreement``,
``spectrum_report``); so are the model/data helpers that
``tools/analysis/class_order.py`` reuses.

    python tools/analysis/logit_spectrum.py CONFIG CKPT
        [--student-ckpt CKPT] [--split test] [--wavelet haar --level 3
        --mode periodization] [--center] [--class-order order.json]
        [--max-batches N] [--out DIR]

CKPT is the teacher's checkpoint, or a distillation checkpoint (keys
``teacher.*`` and ``architecture.*``), which then also gives the student
unless ``--student-ckpt`` (a student-only or a distillation checkpoint) is
passed. For a plain classifier config, CKPT is that classifier; with
``--student-ckpt`` a second checkpoint of the same (or ``--student-config``)
architecture is compared against it.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

import figkd_mmrazor  # noqa: F401  (compatibility fixes before mmrazor)
from figkd_mmrazor.losses.figkd_loss import _load_class_order
from figkd_mmrazor.wavelets import check_wavelet, wavedec

TEACHER_PREFIXES = ('teacher.', '')
STUDENT_PREFIXES = ('architecture.', 'student.', '')


# ----------------------------------------------------------------- maths
def band_names(level: int) -> List[str]:
    """``['cA3', 'cD3', 'cD2', 'cD1']`` for level 3: wavedec's order."""
    return [f'cA{level}'] + [f'cD{lev}' for lev in range(level, 0, -1)]


def _as_tensor(logits) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits)
                        else logits.detach().cpu())
    x = x.to(torch.float64)
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f'logits must have shape (N, C), got '
                         f'{tuple(x.shape)}.')
    return x


def band_coefficients(logits, wavelet: str = 'haar', level: int = 1,
                      mode: str = 'periodization', center: bool = False,
                      class_order: Optional[Sequence[int]] = None
                      ) -> List[torch.Tensor]:
    """``[cA_n, cD_n, ..., cD_1]`` of (N, C) logits, float64 on the CPU.

    ``center`` subtracts each sample's mean logit first (the softmax does
    not see it; it lives in ``cA_n`` alone for periodization); ``class_order``
    permutes the classes first, as ``FiGKDLoss(class_order=...)``.
    """
    x = _as_tensor(logits)
    if class_order is not None:
        x = x[:, torch.as_tensor(list(class_order), dtype=torch.long)]
    if center:
        x = x - x.mean(1, keepdim=True)
    return wavedec(x, wavelet, mode, level)


def band_energies(logits, wavelet: str = 'haar', level: int = 1,
                  mode: str = 'periodization', center: bool = False,
                  class_order=None) -> np.ndarray:
    """Mean over samples of the sum of squared coefficients, per band.

    Returns an array of shape (level + 1,), ordered as :func:`band_names`.
    """
    coeffs = band_coefficients(logits, wavelet, level, mode, center,
                               class_order)
    return np.array([float(c.pow(2).sum(1).mean()) for c in coeffs])


def _cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12
            ) -> torch.Tensor:
    """Row-wise cosine; 1 where both rows are zero, 0 where one is."""
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(1) / (na * nb).clamp_min(eps)
    both_zero = (na <= eps) & (nb <= eps)
    return torch.where(both_zero, torch.ones_like(cos), cos)


def band_agreement(student, teacher, wavelet: str = 'haar', level: int = 1,
                   mode: str = 'periodization', center: bool = False,
                   class_order=None, metric: str = 'cosine') -> np.ndarray:
    """Teacher-student agreement per band, shape (level + 1,).

    ``metric='cosine'``: cosine similarity of the band coefficients of each
    sample, averaged over samples (1 for identical logits).
    ``metric='rel_error'``: ``mean ||s_b - t_b||^2 / mean ||t_b||^2``
    (0 for identical logits).
    """
    s = band_coefficients(student, wavelet, level, mode, center, class_order)
    t = band_coefficients(teacher, wavelet, level, mode, center, class_order)
    if s[0].shape != t[0].shape:
        raise ValueError('student and teacher logits differ in shape: '
                         f'{tuple(_as_tensor(student).shape)} vs '
                         f'{tuple(_as_tensor(teacher).shape)}.')
    if metric == 'cosine':
        return np.array([float(_cosine(a, b).mean()) for a, b in zip(s, t)])
    if metric == 'rel_error':
        out = []
        for a, b in zip(s, t):
            ref = float(b.pow(2).sum(1).mean())
            err = float((a - b).pow(2).sum(1).mean())
            if ref > 0:
                out.append(err / ref)
            else:
                out.append(0.0 if err == 0 else float('inf'))
        return np.array(out)
    raise ValueError(f"metric must be 'cosine' or 'rel_error', got "
                     f'{metric!r}.')


def spectrum_report(teacher, student=None, wavelet: str = 'haar',
                    level: int = 1, mode: str = 'periodization',
                    center: bool = False, class_order=None) -> Dict:
    """Per-band energies, fractions and agreement as a JSON-ready dict."""
    check_wavelet(wavelet)
    num_classes = _as_tensor(teacher).shape[1]
    kwargs = dict(wavelet=wavelet, level=level, mode=mode, center=center,
                  class_order=class_order)
    lengths = [c.shape[1] for c in band_coefficients(
        _as_tensor(teacher)[:1], **kwargs)]
    models = {'teacher': teacher}
    if student is not None:
        models['student'] = student
    bands = [dict(name=n, length=length)
             for n, length in zip(band_names(level), lengths)]
    totals = {}
    for name, logits in models.items():
        energy = band_energies(logits, **kwargs)
        x = _as_tensor(logits)
        if class_order is not None:
            x = x[:, torch.as_tensor(list(class_order))]
        if center:
            x = x - x.mean(1, keepdim=True)
        totals[name] = float(x.pow(2).sum(1).mean())
        band_total = float(energy.sum())
        for band, e in zip(bands, energy):
            band[f'{name}_energy'] = float(e)
            band[f'{name}_fraction'] = (float(e) / band_total
                                        if band_total > 0 else 0.0)
    if student is not None:
        cos = band_agreement(student, teacher, metric='cosine', **kwargs)
        rel = band_agreement(student, teacher, metric='rel_error', **kwargs)
        for band, c, r in zip(bands, cos, rel):
            band['cosine'] = float(c)
            band['rel_error'] = float(r)
    return dict(wavelet=wavelet, level=level, mode=mode, center=center,
                num_classes=num_classes,
                num_samples=int(_as_tensor(teacher).shape[0]),
                total_energy=totals, bands=bands)


def format_table(report: Dict) -> str:
    """The report as a markdown table."""
    has_student = 'cosine' in report['bands'][0]
    head = ['band', 'length', 'teacher energy', 'teacher %']
    if has_student:
        head += ['student energy', 'student %', 'cosine(s, t)',
                 'rel. error']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '---|' * len(head)]
    for b in report['bands']:
        row = [b['name'], str(b['length']), f"{b['teacher_energy']:.4g}",
               f"{100 * b['teacher_fraction']:.2f}"]
        if has_student:
            row += [f"{b['student_energy']:.4g}",
                    f"{100 * b['student_fraction']:.2f}",
                    f"{b['cosine']:.4f}", f"{b['rel_error']:.4f}"]
        lines.append('| ' + ' | '.join(row) + ' |')
    total = report['total_energy']
    lines.append('')
    lines.append('total energy (sum of squared logits per sample): ' +
                 ', '.join(f'{k} {v:.4g}' for k, v in total.items()))
    return '\n'.join(lines)


def plot_report(report: Dict, path: str) -> str:
    """Energy fraction (and agreement) per band as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    bands = report['bands']
    names = [b['name'] for b in bands]
    has_student = 'cosine' in bands[0]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2 if has_student else 1,
                             figsize=(10 if has_student else 5.5, 3.8),
                             squeeze=False)
    ax = axes[0, 0]
    width = 0.4 if has_student else 0.6
    ax.bar(x - (width / 2 if has_student else 0),
           [b['teacher_fraction'] for b in bands], width, label='teacher')
    if has_student:
        ax.bar(x + width / 2, [b['student_fraction'] for b in bands], width,
               label='student')
    ax.set_xticks(x, names)
    ax.set_ylabel('fraction of logit energy')
    ax.set_yscale('log')
    ax.set_title(f"{report['wavelet']} level {report['level']} "
                 f"({report['mode']}), C={report['num_classes']}")
    ax.legend()
    if has_student:
        ax = axes[0, 1]
        ax.bar(x, [b['cosine'] for b in bands], 0.6, color='tab:green')
        ax.set_xticks(x, names)
        ax.axhline(0.0, color='black', linewidth=0.8)
        ax.set_ylim(min(0.0, min(b['cosine'] for b in bands)) - 0.05, 1.05)
        ax.set_ylabel('cosine(student, teacher), mean over samples')
        ax.set_title('agreement per band')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------ models and data
def load_config(path: str, cfg_options: Optional[dict] = None):
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def is_distill_config(cfg) -> bool:
    return 'architecture' in cfg.model and 'teacher' in cfg.model


def classifier_configs(cfg):
    """(teacher, student or None) model configs of a config."""
    if is_distill_config(cfg):
        return cfg.model.teacher, cfg.model.architecture
    return cfg.model, None


def build_classifier(model_cfg) -> torch.nn.Module:
    """An mmpretrain classifier, without loading any pretrained weights."""
    import copy

    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model_cfg = copy.deepcopy(dict(model_cfg))
    model_cfg.pop('_scope_', None)
    model_cfg.pop('data_preprocessor', None)
    return MODELS.build(model_cfg)


def build_data_preprocessor(cfg):
    import copy

    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    pre = copy.deepcopy(dict(pre or dict(type='ClsDataPreprocessor')))
    pre.pop('_scope_', None)
    pre.setdefault('type', 'ClsDataPreprocessor')
    return MODELS.build(pre)


def load_state_dict(path: str) -> dict:
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    return ckpt.get('state_dict', ckpt)


def sub_state(state: dict, prefixes: Sequence[str]) -> dict:
    """Keys under the first prefix in ``prefixes`` that has any, unprefixed.

    ``''`` stands for the plain layout (``backbone.*``, ``head.*``).
    """
    for prefix in prefixes:
        if prefix:
            sub = {k[len(prefix):]: v for k, v in state.items()
                   if k.startswith(prefix)}
        else:
            sub = {k: v for k, v in state.items()
                   if k.startswith(('backbone.', 'neck.', 'head.'))}
        if sub:
            return sub
    raise KeyError(f'no weights under any of {list(prefixes)} '
                   f'(first keys: {list(state)[:5]}).')


def load_weights(model: torch.nn.Module, state: dict,
                 prefixes: Sequence[str], source: str = '') -> None:
    """Load a (sub) state dict; every backbone/neck/head weight must fit."""
    sub = sub_state(state, prefixes)
    result = model.load_state_dict(sub, strict=False)
    missing = [k for k in result.missing_keys
               if not k.startswith('data_preprocessor.')]
    unexpected = [k for k in result.unexpected_keys
                  if not k.startswith('data_preprocessor.')]
    if missing or unexpected:
        raise ValueError(f'{source}: checkpoint does not fit the model '
                         f'(missing {missing[:5]}, unexpected '
                         f'{unexpected[:5]}).')


def build_loader(cfg, split: str = 'test', batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None):
    """The config's dataloader of ``split`` ('train', 'val' or 'test').

    Unshuffled; the train split keeps the config's (augmenting) pipeline.
    """
    import copy

    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    key = f'{split}_dataloader'
    if not cfg.get(key):
        raise KeyError(f'the config has no {key}.')
    loader = copy.deepcopy(cfg[key])
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    if batch_size:
        loader.batch_size = batch_size
    if num_workers is not None:
        loader.num_workers = num_workers
        if num_workers == 0:
            loader.persistent_workers = False
    init_default_scope('mmpretrain')
    return Runner.build_dataloader(loader)


def resolve_device(device: str = 'auto') -> torch.device:
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return torch.device(device)


@torch.no_grad()
def collect_logits(models: Dict[str, torch.nn.Module], loader, preprocessor,
                   device='cpu', max_batches: Optional[int] = None):
    """Logits of each model on the loader's images, and the labels.

    Returns ``({name: (N, C) float32 tensor}, (N,) long tensor)``.
    """
    device = torch.device(device)
    preprocessor = preprocessor.to(device).eval()
    for model in models.values():
        model.to(device).eval()
    outs = {name: [] for name in models}
    labels = []
    for i, data in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        data = preprocessor(data, False)
        for name, model in models.items():
            logits = model(data['inputs'], mode='tensor')
            if isinstance(logits, (tuple, list)):
                logits = logits[-1]
            outs[name].append(logits.float().cpu())
        labels.append(torch.cat([s.gt_label.view(-1)[:1].cpu()
                                 for s in data['data_samples']]))
    if not labels:
        raise ValueError('the dataloader gave no batch.')
    return ({n: torch.cat(v) for n, v in outs.items()},
            torch.cat(labels).long())


def models_from_checkpoints(cfg, ckpt: str, student_ckpt: Optional[str] = None,
                            student_cfg=None, want_student: bool = True):
    """``{'teacher': model[, 'student': model]}`` loaded from checkpoints."""
    teacher_cfg, pair_student_cfg = classifier_configs(cfg)
    state = load_state_dict(ckpt)
    models = {'teacher': build_classifier(teacher_cfg)}
    load_weights(models['teacher'], state, TEACHER_PREFIXES, ckpt)
    if not want_student:
        return models
    s_cfg = student_cfg if student_cfg is not None else pair_student_cfg
    if student_ckpt is not None:
        s_state, s_source = load_state_dict(student_ckpt), student_ckpt
        if s_cfg is None:
            s_cfg = teacher_cfg  # a second checkpoint of the same model
    elif s_cfg is not None and any(k.startswith('architecture.')
                                   for k in state):
        s_state, s_source = state, ckpt  # a distillation checkpoint
    else:
        return models
    models['student'] = build_classifier(s_cfg)
    load_weights(models['student'], s_state, STUDENT_PREFIXES, s_source)
    return models


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Wavelet band energies of teacher/student logits.')
    parser.add_argument('config', help='distillation or classifier config')
    parser.add_argument('checkpoint', help='teacher (or distillation) '
                        'checkpoint')
    parser.add_argument('--student-ckpt', help='student checkpoint (default: '
                        'the student of a distillation checkpoint)')
    parser.add_argument('--student-config', help='config of the student '
                        'model, if not the pair of CONFIG')
    parser.add_argument('--split', default='test',
                        choices=['train', 'val', 'test'])
    parser.add_argument('--wavelet', default='haar')
    parser.add_argument('--level', type=int, default=3)
    parser.add_argument('--mode', default='periodization')
    parser.add_argument('--center', action='store_true',
                        help='subtract each sample\'s mean logit first')
    parser.add_argument('--class-order', help='JSON class order (as for '
                        'FiGKDLoss) applied before the transform')
    parser.add_argument('--max-batches', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--out', default=None, help='output directory '
                        '(default work_dirs/logit_spectrum/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    student_cfg = None
    if args.student_config:
        student_cfg = classifier_configs(load_config(args.student_config))[0]
    models = models_from_checkpoints(cfg, args.checkpoint, args.student_ckpt,
                                     student_cfg)
    loader = build_loader(cfg, args.split, args.batch_size, args.num_workers)
    device = resolve_device(args.device)
    logits, labels = collect_logits(models, loader,
                                    build_data_preprocessor(cfg), device,
                                    args.max_batches)
    order = _load_class_order(args.class_order)
    report = spectrum_report(logits['teacher'], logits.get('student'),
                             args.wavelet, args.level, args.mode,
                             args.center, order)
    report.update(
        config=args.config, checkpoint=args.checkpoint,
        student_checkpoint=args.student_ckpt, split=args.split,
        class_order=args.class_order,
        top1={name: float((x.argmax(1) == labels).float().mean())
              for name, x in logits.items()})
    out = args.out or osp.join(
        'work_dirs', 'logit_spectrum',
        osp.splitext(osp.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    print(f"{report['num_samples']} samples of the {args.split} split, "
          f"{report['num_classes']} classes; top-1 " + ', '.join(
              f'{k} {100 * v:.2f}%' for k, v in report['top1'].items()))
    print(format_table(report))
    with open(osp.join(out, 'spectrum.json'), 'w') as f:
        json.dump(report, f, indent=2)
    plot_report(report, osp.join(out, 'spectrum.png'))
    print(f'wrote {osp.join(out, "spectrum.json")} and '
          f'{osp.join(out, "spectrum.png")}')
    return report


if __name__ == '__main__':
    main()
