"""The torch DWT against PyWavelets, the outside oracle."""
import numpy as np
import pytest
import pywt
import torch

from figkd_mmrazor.wavelets import (band_operator, coeff_lengths, wavedec,
                                    waverec, weighted_bands)

WAVELETS = pywt.wavelist(kind='discrete')
MODES = pywt.Modes.modes


def _levels(length, wavelet):
    max_level = pywt.dwt_max_level(length, pywt.Wavelet(wavelet).dec_len)
    return sorted({1, 2, max_level} & set(range(1, max_level + 1)))


def _scale(signal, wavelet, mode, level):
    """Largest magnitude the transform handles on the way to ``level``.

    'smooth' extrapolates linearly, so intermediate approximations can
    outgrow the signal by orders of magnitude; float32 error is relative to
    that, not to the (possibly cancelled) final coefficients.
    """
    scale = np.abs(signal).max()
    for lev in range(1, level + 1):
        for c in pywt.wavedec(signal, wavelet, mode, lev, axis=-1):
            scale = max(scale, np.abs(c).max())
    return scale


@pytest.mark.parametrize('wavelet', WAVELETS)
def test_matches_pywt_all_modes_levels_lengths(wavelet):
    rng = np.random.default_rng(0)
    dec_len = pywt.Wavelet(wavelet).dec_len
    # Odd and even lengths, one short enough that the extension is long.
    for length in (2 * dec_len + 1, 2 * dec_len + 6, 101, 200):
        signal = rng.standard_normal((3, length)) * 5
        for mode in MODES:
            for level in _levels(length, wavelet):
                ref = pywt.wavedec(signal, wavelet, mode, level, axis=-1)
                rec_ref = pywt.waverec(ref, wavelet, mode, axis=-1)
                tol32 = 1e-5 * _scale(signal, wavelet, mode, level)
                for dtype, atol in ((torch.float64, 1e-9 * tol32 / 1e-5),
                                    (torch.float32, tol32)):
                    got = wavedec(torch.tensor(signal, dtype=dtype), wavelet,
                                  mode, level)
                    where = f'{wavelet} {mode} level {level} N={length}'
                    assert [c.shape[-1] for c in got] == coeff_lengths(
                        length, wavelet, level, mode)
                    assert len(got) == len(ref)
                    for g, r in zip(got, ref):
                        assert g.dtype == dtype
                        np.testing.assert_allclose(g.numpy(), r, rtol=0,
                                                   atol=atol, err_msg=where)
                    rec = waverec(got, wavelet, mode)
                    np.testing.assert_allclose(rec.numpy(), rec_ref, rtol=0,
                                               atol=atol, err_msg=where)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('mode', ['periodization', 'symmetric', 'smooth',
                                  'zero'])
def test_device_and_dtype_preserving_on_the_meta_device(mode, dtype):
    # 'meta' tensors have shapes but no data: any step that leaves the
    # input's device (a CPU index plan, a numpy round trip) fails here.
    signal = torch.empty(3, 37, dtype=dtype, device='meta')
    coeffs = wavedec(signal, 'db2', mode, 2)
    assert [c.shape[-1] for c in coeffs] == coeff_lengths(37, 'db2', 2, mode)
    assert all(c.device.type == 'meta' and c.dtype == dtype for c in coeffs)
    rec = waverec(coeffs, 'db2', mode)
    assert rec.device.type == 'meta' and rec.dtype == dtype
    assert rec.shape == (3, 38)


def test_gradcheck_float64():
    x = torch.randn(3, 23, dtype=torch.float64, requires_grad=True)
    for mode in ('symmetric', 'periodization', 'smooth', 'antireflect'):
        assert torch.autograd.gradcheck(
            lambda v: wavedec(v, 'db2', mode, 2), (x,))
        coeffs = [c.detach().requires_grad_(True)
                  for c in wavedec(x, 'db2', mode, 2)]
        assert torch.autograd.gradcheck(
            lambda *c: waverec(list(c), 'db2', mode), coeffs)
    # The band weighting, level by level (the builder of its operator).
    x = torch.randn(2, 33, dtype=torch.float64, requires_grad=True)
    for wavelet, mode in (('db2', 'symmetric'), ('haar', 'periodization'),
                          ('sym4', 'smooth')):
        for target in ('reconstruct', 'coefficients'):
            assert torch.autograd.gradcheck(
                lambda v: weighted_bands(v, wavelet, mode, 0.5, [2.0, 0.0],
                                         target), (x,))


@pytest.mark.parametrize('target', ['reconstruct', 'coefficients'])
@pytest.mark.parametrize('wavelet,mode,low,highs', [
    ('haar', 'periodization', 0.0, [1.0]),
    ('haar', 'symmetric', 0.0, [2.0, 0.0, 0.5]),
    ('db4', 'periodization', 0.5, [1.0, 3.0]),
    ('sym5', 'antireflect', 1.0, [0.0, 1.5]),
    ('bior2.4', 'zero', 0.0, [1.0]),
])
def test_band_weighting_and_its_operator_match_pywt(target, wavelet, mode,
                                                    low, highs):
    rng = np.random.default_rng(1)
    for length in (37, 64):
        x = rng.standard_normal((4, length)) * 3
        coeffs = pywt.wavedec(x, wavelet, mode, len(highs), axis=-1)
        weights = [low, *highs]
        if target == 'coefficients':
            ref = np.concatenate(
                [c * w for c, w in zip(coeffs, weights) if w], axis=-1)
        else:
            ref = pywt.waverec([c * w for c, w in zip(coeffs, weights)],
                               wavelet, mode, axis=-1)[:, :length]
        args = (wavelet, mode, low, highs, target)
        level_by_level = weighted_bands(torch.tensor(x), *args)
        operator = band_operator(length, *args)
        assert operator.dtype == torch.float64
        assert operator.shape == (length, ref.shape[-1])
        where = f'{wavelet} {mode} {target} N={length}'
        np.testing.assert_allclose(level_by_level.numpy(), ref, rtol=0,
                                   atol=1e-10, err_msg=where)
        np.testing.assert_allclose((torch.tensor(x) @ operator).numpy(), ref,
                                   rtol=0, atol=1e-10, err_msg=where)
