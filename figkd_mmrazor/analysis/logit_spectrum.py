"""Wavelet spectrum of logits along the class axis, per band.

Each logit vector is decomposed as FiGKDLoss does (``wavedec``, bands
``[cA_n, cD_n, ..., cD_1]``). Per band: the mean energy (sum of squared
coefficients per sample) and its share of the total; with a student, the
cosine similarity of student and teacher coefficients (mean over samples)
and the relative squared error ``mean ||s_b - t_b||^2 / mean ||t_b||^2``.
For an orthogonal wavelet with ``mode='periodization'`` and ``C`` divisible
by ``2**level`` the band energies add up to the logits' energy (Parseval).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..wavelets import check_wavelet, wavedec


def band_names(level: int) -> List[str]:
    """``['cA3', 'cD3', 'cD2', 'cD1']`` for level 3: wavedec's order."""
    return [f'cA{level}'] + [f'cD{lev}' for lev in range(level, 0, -1)]


def _as_logits(logits) -> torch.Tensor:
    x = (logits.detach().cpu() if torch.is_tensor(logits) else
         torch.as_tensor(np.asarray(logits)))
    x = x.to(torch.float64)
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f'logits must have shape (N, C), got '
                         f'{tuple(x.shape)}.')
    return x


def prepare_logits(logits, center: bool = False,
                   class_order: Optional[Sequence[int]] = None
                   ) -> torch.Tensor:
    """(N, C) float64 logits, classes permuted by ``class_order`` (as
    ``FiGKDLoss(class_order=...)`` does), each row's mean removed if
    ``center`` (the softmax does not see it)."""
    x = _as_logits(logits)
    if class_order is not None:
        x = x[:, torch.as_tensor(list(class_order), dtype=torch.long)]
    if center:
        x = x - x.mean(1, keepdim=True)
    return x


def band_coefficients(logits, wavelet: str = 'haar', level: int = 1,
                      mode: str = 'periodization', center: bool = False,
                      class_order: Optional[Sequence[int]] = None
                      ) -> List[torch.Tensor]:
    """``[cA_n, cD_n, ..., cD_1]`` of (N, C) logits, float64 on the CPU."""
    return wavedec(prepare_logits(logits, center, class_order), wavelet,
                   mode, level)


def band_energies(logits, wavelet: str = 'haar', level: int = 1,
                  mode: str = 'periodization', center: bool = False,
                  class_order=None) -> np.ndarray:
    """Mean over samples of the sum of squared coefficients, per band,
    shape (level + 1,), ordered as :func:`band_names`."""
    coeffs = band_coefficients(logits, wavelet, level, mode, center,
                               class_order)
    return np.array([float(c.pow(2).sum(1).mean()) for c in coeffs])


def _cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12
            ) -> torch.Tensor:
    """Row-wise cosine; 1 where both rows are zero, 0 where one is."""
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(1) / (na * nb).clamp_min(eps)
    return torch.where((na <= eps) & (nb <= eps), torch.ones_like(cos), cos)


def band_agreement(student, teacher, wavelet: str = 'haar', level: int = 1,
                   mode: str = 'periodization', center: bool = False,
                   class_order=None, metric: str = 'cosine') -> np.ndarray:
    """Teacher-student agreement per band, shape (level + 1,).

    ``metric='cosine'``: cosine similarity of each sample's band
    coefficients, averaged over samples (1 for identical logits).
    ``metric='rel_error'``: ``mean ||s_b - t_b||^2 / mean ||t_b||^2``
    (0 for identical logits).
    """
    if metric not in ('cosine', 'rel_error'):
        raise ValueError(f"metric must be 'cosine' or 'rel_error', got "
                         f'{metric!r}.')
    s = band_coefficients(student, wavelet, level, mode, center, class_order)
    t = band_coefficients(teacher, wavelet, level, mode, center, class_order)
    if s[0].shape != t[0].shape:
        raise ValueError('student and teacher logits differ in shape: '
                         f'{tuple(_as_logits(student).shape)} vs '
                         f'{tuple(_as_logits(teacher).shape)}.')
    if metric == 'cosine':
        return np.array([float(_cosine(a, b).mean()) for a, b in zip(s, t)])
    out = []
    for a, b in zip(s, t):
        ref = float(b.pow(2).sum(1).mean())
        err = float((a - b).pow(2).sum(1).mean())
        out.append(err / ref if ref > 0 else
                   (0.0 if err == 0 else float('inf')))
    return np.array(out)


def spectrum_report(teacher, student=None, wavelet: str = 'haar',
                    level: int = 1, mode: str = 'periodization',
                    center: bool = False, class_order=None) -> Dict:
    """Per-band energies, shares and agreement as a JSON-ready dict."""
    check_wavelet(wavelet)
    kwargs = dict(wavelet=wavelet, level=level, mode=mode, center=center,
                  class_order=class_order)
    models = {'teacher': teacher}
    if student is not None:
        models['student'] = student
    lengths = [c.shape[1] for c in band_coefficients(
        _as_logits(teacher)[:1], **kwargs)]
    bands = [dict(name=n, length=length)
             for n, length in zip(band_names(level), lengths)]
    totals = {}
    for name, logits in models.items():
        energy = band_energies(logits, **kwargs)
        totals[name] = float(prepare_logits(logits, center, class_order)
                             .pow(2).sum(1).mean())
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
    x = _as_logits(teacher)
    return dict(wavelet=wavelet, level=level, mode=mode, center=center,
                num_classes=int(x.shape[1]), num_samples=int(x.shape[0]),
                total_energy=totals, bands=bands)


def format_spectrum_table(report: Dict) -> str:
    """A :func:`spectrum_report` as a markdown table."""
    has_student = 'cosine' in report['bands'][0]
    head = ['band', 'length', 'teacher energy', 'teacher %']
    if has_student:
        head += ['student energy', 'student %', 'cosine(s, t)',
                 'rel. error']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for b in report['bands']:
        row = [b['name'], str(b['length']), f"{b['teacher_energy']:.4g}",
               f"{100 * b['teacher_fraction']:.2f}"]
        if has_student:
            row += [f"{b['student_energy']:.4g}",
                    f"{100 * b['student_fraction']:.2f}",
                    f"{b['cosine']:.4f}", f"{b['rel_error']:.4f}"]
        lines.append('| ' + ' | '.join(row) + ' |')
    lines += ['', 'total energy (sum of squared logits per sample): ' +
              ', '.join(f'{k} {v:.4g}'
                        for k, v in report['total_energy'].items())]
    return '\n'.join(lines)


def plot_spectrum(report: Dict, path) -> str:
    """Energy share (and agreement) per band as a PNG at ``path``."""
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
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
    return str(path)
