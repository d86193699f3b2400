"""FiGKDLoss against outside oracles: PyWavelets and MMRazor's KLDivergence."""
import json

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F
from mmrazor.models import KLDivergence
from mmrazor.registry import MODELS

from figkd_mmrazor.losses import FiGKDLoss
from figkd_mmrazor.losses import figkd_loss as figkd_module
from figkd_mmrazor.wavelets import wavedec, waverec


def _logits(n=8, c=37, scale=3.0, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=g, dtype=dtype) * scale,
            torch.randn(n, c, generator=g, dtype=dtype) * scale)


def _pywt_bands(x, wavelet, mode, level, low, highs, target):
    """The weighted band signal, computed with PyWavelets alone."""
    coeffs = pywt.wavedec(x.double().numpy(), wavelet, mode, level, axis=-1)
    weighted = [c * w for c, w in zip(coeffs, [low, *highs])]
    if target == 'coefficients':
        return torch.from_numpy(np.concatenate(
            [c for c, w in zip(weighted, [low, *highs]) if w], axis=-1))
    rec = pywt.waverec(weighted, wavelet, mode, axis=-1)
    return torch.from_numpy(rec[..., :x.shape[-1]])


def _kl(s, t, tau, reduction='batchmean'):
    return tau**2 * F.kl_div(F.log_softmax(s / tau, 1), F.softmax(t / tau, 1),
                             reduction=reduction)


def test_registered_in_mmrazor_models():
    loss = MODELS.build(dict(type='FiGKDLoss', wavelet='db2', level=2))
    assert isinstance(loss, FiGKDLoss)


@pytest.mark.parametrize('wavelet', ['haar', 'db4', 'sym5', 'bior2.4',
                                     'coif2'])
@pytest.mark.parametrize('mode', pywt.Modes.modes)
@pytest.mark.parametrize('num_classes', [36, 37])
def test_all_bands_equal_mmrazor_kd(wavelet, mode, num_classes):
    s, t = _logits(c=num_classes)
    level = min(2, pywt.dwt_max_level(num_classes,
                                      pywt.Wavelet(wavelet).dec_len))
    kd = KLDivergence(tau=4.0)(s, t)
    figkd = FiGKDLoss(tau=4.0, wavelet=wavelet, mode=mode, level=level,
                      low_weight=1.0, high_weights=1.0)(s, t)
    torch.testing.assert_close(figkd, kd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('reduction', ['none', 'batchmean', 'sum', 'mean'])
def test_kd_identity_holds_for_every_reduction(reduction):
    s, t = _logits()
    kd = KLDivergence(tau=2.0, reduction=reduction)(s, t)
    figkd = FiGKDLoss(tau=2.0, low_weight=1.0, reduction=reduction,
                      wavelet='db3', mode='symmetric')(s, t)
    torch.testing.assert_close(figkd, kd, rtol=1e-5, atol=1e-5)


@pytest.fixture(params=['operator', 'level_by_level'])
def path(request, monkeypatch):
    """Run a test with the band operator, then with the level-by-level
    transform that serves class counts above OPERATOR_MAX_CLASSES."""
    if request.param == 'level_by_level':
        monkeypatch.setattr(figkd_module, 'OPERATOR_MAX_CLASSES', 0)
    return request.param


@pytest.mark.parametrize('target', ['reconstruct', 'coefficients'])
@pytest.mark.parametrize('wavelet,mode,level,low,highs', [
    ('haar', 'periodization', 1, 0.0, [1.0]),
    ('db2', 'symmetric', 2, 0.5, [2.0, 0.25]),
    ('sym4', 'periodization', 2, 0.0, [1.0, 3.0]),
    ('haar', 'reflect', 3, 0.0, [1.0, 0.0, 3.0]),
    ('bior1.3', 'smooth', 2, 1.0, [0.0, 1.5]),
])
def test_weighted_bands_match_pywt(target, wavelet, mode, level, low, highs,
                                   path):
    s, t = _logits(c=53)
    loss = FiGKDLoss(tau=3.0, wavelet=wavelet, mode=mode, level=level,
                     low_weight=low, high_weights=highs, target=target)
    ref_s = _pywt_bands(s, wavelet, mode, level, low, highs, target)
    ref_t = _pywt_bands(t, wavelet, mode, level, low, highs, target)
    torch.testing.assert_close(loss(s, t).double(), _kl(ref_s, ref_t, 3.0),
                               rtol=1e-5, atol=1e-5)
    # The weighted signal itself, per sample: high_weights coarsest first.
    torch.testing.assert_close(loss.bands_signal(s).double(), ref_s,
                               rtol=1e-5, atol=1e-5)


def test_mse_distance():
    s, t = _logits()
    loss = FiGKDLoss(distance='mse', reduction='sum', low_weight=0.0)
    ref_s = _pywt_bands(s, 'haar', 'periodization', 1, 0.0, [1.0],
                        'reconstruct')
    ref_t = _pywt_bands(t, 'haar', 'periodization', 1, 0.0, [1.0],
                        'reconstruct')
    torch.testing.assert_close(loss(s, t).double(),
                               (ref_s - ref_t).square().sum(), rtol=1e-6,
                               atol=0)
    for reduction, divisor in (('batchmean', s.shape[0]),
                               ('mean', s.numel())):
        loss = FiGKDLoss(distance='mse', reduction=reduction, low_weight=0.0)
        torch.testing.assert_close(
            loss(s, t).double(), (ref_s - ref_t).square().sum() / divisor,
            rtol=1e-6, atol=0)


@pytest.mark.parametrize('distance', ['kl', 'mse'])
@pytest.mark.parametrize('target,wavelet,mode,level,highs', [
    ('reconstruct', 'haar', 'periodization', 1, [1.0]),  # the recipes'
    ('reconstruct', 'haar', 'periodization', 3, [1.0, 2.0, 0.5]),
    ('reconstruct', 'db4', 'symmetric', 2, [1.0, 1.0]),
    ('coefficients', 'db2', 'zero', 2, [0.5, 1.0]),
])
def test_reduction_none_values_match_the_reference(distance, target, wavelet,
                                                    mode, level, highs, path):
    # Element by element, in class order: a result in any other order sums
    # to the same loss but is wrong here.
    s, t = _logits(c=48)
    got = FiGKDLoss(tau=2.0, wavelet=wavelet, mode=mode, level=level,
                    high_weights=highs, target=target, distance=distance,
                    reduction='none', loss_weight=1.5)(s, t)
    ref_s, ref_t = (_pywt_bands(x, wavelet, mode, level, 0.0, highs, target)
                    for x in (s, t))
    if distance == 'kl':
        ref = _kl(ref_s, ref_t, 2.0, reduction='none')
    else:
        ref = (ref_s - ref_t).square()
    assert got.shape == ref.shape
    torch.testing.assert_close(got.double(), 1.5 * ref, rtol=1e-4,
                               atol=1e-6)


def test_loss_weight_scales():
    s, t = _logits()
    weighted = FiGKDLoss(loss_weight=2.5)(s, t)
    torch.testing.assert_close(weighted, 2.5 * FiGKDLoss()(s, t))


def _reference_bands(x, wavelet, mode, low, highs, target):
    """The plain formula, through autograd: waverec of weighted wavedec."""
    coeffs = wavedec(x, wavelet, mode, len(highs))
    weighted = [c * w for c, w in zip(coeffs, [low, *highs])]
    if target == 'coefficients':
        return torch.cat([c for c, w in zip(weighted, [low, *highs]) if w], 1)
    return waverec(weighted, wavelet, mode)[:, :x.shape[1]]


@pytest.mark.parametrize('num_classes,wavelet,level,low,target', [
    (50, 'haar', 1, 0.0, 'reconstruct'),  # the demo and the recipes
    (37, 'haar', 1, 0.0, 'reconstruct'),  # Oxford-IIIT Pets: odd
    (37, 'db4', 2, 0.0, 'reconstruct'),  # odd: operator not symmetric
    (50, 'haar', 3, 0.0, 'reconstruct'),  # the seed study's lead
    (200, 'haar', 1, 0.0, 'reconstruct'),  # CUB
    (200, 'haar', 3, 1.0, 'reconstruct'),
    (200, 'db4', 2, 0.0, 'reconstruct'),
    (200, 'sym8', 3, 0.0, 'reconstruct'),
    (100, 'db4', 1, 0.0, 'coefficients'),
    (1000, 'haar', 1, 0.0, 'reconstruct'),  # ImageNet-sized
    (1000, 'sym8', 2, 0.0, 'reconstruct'),
])
@pytest.mark.parametrize('reduction', ['batchmean', 'mean'])
@pytest.mark.filterwarnings('ignore:reduction.*divides the total loss')
def test_gradient_matches_autograd_through_the_reference(
        num_classes, wavelet, level, low, target, reduction, path):
    s, t = _logits(n=6, c=num_classes)
    s.requires_grad_(True)
    t.requires_grad_(True)
    loss = FiGKDLoss(tau=4.0, wavelet=wavelet, level=level, low_weight=low,
                     target=target, reduction=reduction,
                     teacher_detach=False)
    grad_s, grad_t = torch.autograd.grad(loss(s, t), (s, t))

    s64, t64 = (x.detach().double().requires_grad_(True) for x in (s, t))
    args = (wavelet, 'periodization', low, [1.0] * level, target)
    ref = _kl(_reference_bands(s64, *args), _reference_bands(t64, *args),
              4.0, reduction=reduction)
    ref_s, ref_t = torch.autograd.grad(ref, (s64, t64))
    for got, want in ((grad_s, ref_s), (grad_t, ref_t)):
        scale = want.abs().max().item()
        assert scale > 0
        torch.testing.assert_close(got.double(), want, rtol=1e-4,
                                   atol=1e-5 * scale)


def test_operator_is_built_once_per_class_count(monkeypatch):
    built = []
    band_operator = figkd_module.band_operator

    def counting(length, *args):
        built.append(length)
        return band_operator(length, *args)

    monkeypatch.setattr(figkd_module, 'band_operator', counting)
    loss = FiGKDLoss(wavelet='db2', level=2, mode='symmetric')
    for num_classes in (50, 50, 37, 50, 37):
        s, t = _logits(c=num_classes, seed=num_classes)
        ref = _kl(*(_pywt_bands(x, 'db2', 'symmetric', 2, 0.0, [1.0, 1.0],
                                'reconstruct') for x in (s, t)), 4.0)
        torch.testing.assert_close(loss(s, t).double(), ref, rtol=1e-5,
                                   atol=1e-6)
    assert built == [50, 37]


def test_class_order_permutes_before_transform(tmp_path, path):
    s, t = _logits(c=12)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    path = tmp_path / 'order.json'
    path.write_text(json.dumps({'class_order': order.tolist()}))
    for spec in (order.tolist(), str(path)):
        got = FiGKDLoss(class_order=spec, wavelet='db2')(s, t)
        ref = FiGKDLoss(wavelet='db2')(s[:, order], t[:, order])
        torch.testing.assert_close(got, ref)
    assert not torch.allclose(FiGKDLoss(class_order=order.tolist())(s, t),
                              FiGKDLoss()(s, t))


def test_teacher_detach():
    s, t = _logits()
    s.requires_grad_(True)
    t.requires_grad_(True)
    FiGKDLoss()(s, t).backward()
    assert t.grad is None and s.grad is not None
    FiGKDLoss(teacher_detach=False)(s, t).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_logits_compute_in_float32(dtype):
    s, t = _logits(scale=5.0)
    loss = FiGKDLoss(wavelet='db2', level=2)
    ref = loss(s.to(dtype).float(), t.to(dtype).float())
    got = loss(s.to(dtype), t.to(dtype))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        under_autocast = loss(s.to(dtype), t.to(dtype))
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, ref)


def test_large_logits_match_the_float64_reference():
    # Logits of 1e4: a softmax taken naively in float32 overflows; the loss
    # and its gradient must stay finite and equal the float64 reference.
    s, t = _logits(scale=1.0)
    s = (s * 1e4).clamp(-1e4, 1e4).requires_grad_(True)
    t = (t * 1e4).clamp(-1e4, 1e4)
    ref_t = _pywt_bands(t, 'db4', 'periodization', 2, 0.0, [1.0, 1.0],
                        'reconstruct')
    for distance in ('kl', 'mse'):
        loss = FiGKDLoss(distance=distance, wavelet='db4', level=2)(s, t)
        loss.backward()
        # The bands are linear in the logits: the reference takes them as
        # ref_s @ op, op = PyWavelets' bands of the identity, so autograd
        # gives the reference gradient in float64.
        ref_s = s.detach().double().requires_grad_(True)
        eye = torch.eye(s.shape[1], dtype=torch.float64)
        op = _pywt_bands(eye, 'db4', 'periodization', 2, 0.0, [1.0, 1.0],
                         'reconstruct')
        signal_s = ref_s @ op
        ref = (_kl(signal_s, ref_t, 4.0) if distance == 'kl' else
               F.mse_loss(signal_s, ref_t, reduction='sum') / s.shape[0])
        ref.backward()
        assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
        torch.testing.assert_close(loss.double(), ref.detach(), rtol=1e-4,
                                   atol=1e-4)
        torch.testing.assert_close(s.grad.double(), ref_s.grad, rtol=1e-4,
                                   atol=1e-6 * ref_s.grad.abs().max().item())
        s.grad = None


def test_large_class_count_runs_level_by_level(monkeypatch):
    # ImageNet-21k: beyond OPERATOR_MAX_CLASSES no C x C matrix is built,
    # so the memory stays linear in the class count.
    def no_operator(length, *args):
        raise AssertionError(f'a {length} x {length} operator was built')

    monkeypatch.setattr(figkd_module, 'band_operator', no_operator)
    s, t = _logits(n=2, c=21843)
    loss = FiGKDLoss(wavelet='sym8', level=3)
    value = loss(s, t)
    ref_s = _pywt_bands(s, 'sym8', 'periodization', 3, 0.0, [1.0] * 3,
                        'reconstruct')
    ref_t = _pywt_bands(t, 'sym8', 'periodization', 3, 0.0, [1.0] * 3,
                        'reconstruct')
    assert 21843 > figkd_module.OPERATOR_MAX_CLASSES
    torch.testing.assert_close(value.double(), _kl(ref_s, ref_t, 4.0),
                               rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize('kwargs,match', [
    (dict(wavelet='db44'), r"Unknown discrete wavelet 'db44'.*'db4'"),
    (dict(wavelet='morl'), r"Unknown discrete wavelet 'morl'"),
    (dict(mode='mirror'), r"Unknown signal extension mode 'mirror'.*"
                          r"periodization"),
    (dict(level=0), r'level must be an integer >= 1'),
    (dict(level=2, high_weights=[1.0, 2.0, 3.0]),
     r'high_weights has 3 entries but level is 2'),
    (dict(high_weights=-1.0), r'high_weights\[0\] must be >= 0'),
    (dict(low_weight=float('nan')), r'low_weight must be a finite number'),
    (dict(low_weight=0.0, high_weights=0.0), r'nothing would be distilled'),
    (dict(target='logits'), r"target must be one of \['reconstruct', "
                            r"'coefficients'\]"),
    (dict(distance='cosine'), r"distance must be one of \['kl', 'mse'\]"),
    (dict(reduction='avg'), r'reduction must be one of'),
    (dict(tau=0), r'tau must be > 0'),
    (dict(class_order=[0, 1, 1]), r'not a permutation of range\(3\).*'
                                  r'missing: \[2\]'),
    (dict(class_order='/nonexistent/order.json'), r'class_order file'),
])
def test_bad_arguments_fail_at_build(kwargs, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        FiGKDLoss(**kwargs)


def test_bad_inputs_fail_at_first_forward():
    s, t = _logits(c=10)
    with pytest.raises(ValueError, match=r'level 3 is too deep for a signal '
                                         r"of length 10 with wavelet 'db4'"):
        FiGKDLoss(wavelet='db4', level=3)(s, t)
    with pytest.raises(ValueError, match=r'same shape \(N, C\); got '
                                         r'\(8, 10\) and \(8, 9\)'):
        FiGKDLoss()(s, t[:, :9])
    with pytest.raises(ValueError, match=r'class_order has 4 entries but '
                                         r'the logits have 10 classes'):
        FiGKDLoss(class_order=[3, 2, 1, 0])(s, t)


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_logits_name_the_side(bad):
    s, t = _logits(c=10)
    for sides in (('student', ), ('teacher', ), ('student', 'teacher')):
        s_bad, t_bad = s.clone(), t.clone()
        for side, x in (('student', s_bad), ('teacher', t_bad)):
            if side in sides:
                x[2, 3] = bad
        with pytest.raises(FloatingPointError,
                           match=rf'non-finite \(NaN or Inf\) '
                                 rf'{" and ".join(sides)} logits'):
            FiGKDLoss()(s_bad, t_bad)


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_standardize_with_all_bands_is_kd_on_z_scored_logits(tau):
    """Logit standardization: MMRazor's KLDivergence on logits z-scored by
    hand is the oracle; a shift and scale of either side changes nothing."""
    s, t = _logits(c=37)

    def z(x):
        return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True,
                                                      unbiased=False)

    loss = FiGKDLoss(tau=tau, low_weight=1.0, high_weights=1.0,
                     standardize=True)
    torch.testing.assert_close(loss(s, t), KLDivergence(tau=tau)(z(s), z(t)),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss(3 * s + 2, 0.5 * t - 1), loss(s, t),
                               rtol=1e-4, atol=1e-6)
    # The detail-only loss standardizes before its bands as well.
    figkd = FiGKDLoss(tau=tau, standardize=True)
    torch.testing.assert_close(figkd(s, t), FiGKDLoss(tau=tau)(z(s), z(t)),
                               rtol=1e-5, atol=1e-6)
    # A constant logit vector (std 0) stays finite.
    flat = torch.ones(2, 37)
    assert torch.isfinite(loss(flat, flat)).all()
