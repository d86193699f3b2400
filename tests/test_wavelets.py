"""The torch DWT against PyWavelets, the outside oracle."""
import numpy as np
import pytest
import pywt
import torch

from figkd_mmrazor.wavelets import coeff_lengths, wavedec, waverec

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
