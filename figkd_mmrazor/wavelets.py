"""Discrete wavelet transform of torch tensors along the last dimension.

``wavedec`` / ``waverec`` mirror PyWavelets (``pywt.wavedec(data, wavelet,
mode, level)``, coefficients ``[cA_n, cD_n, ..., cD_1]``) for every discrete
wavelet and every signal extension mode, and are differentiable, device- and
dtype-preserving. PyWavelets is consulted only for filter banks; the forward
pass is plain torch (no numpy, no host synchronisation).

How one level is computed (conventions checked against PyWavelets):

* analysis: the signal is extended at both ends by the mode's rule, then one
  ``conv1d`` with stride 2 and two output channels (low and high pass) yields
  ``cA`` and ``cD`` together; ``out = (N + F - 1) // 2`` for a filter of
  length ``F``, ``ceil(N / 2)`` for ``periodization``;
* synthesis: one ``conv_transpose1d`` with stride 2 sums the upsampled
  ``cA * rec_lo + cD * rec_hi``; its ``padding`` keeps exactly PyWavelets'
  valid part (length ``2n - F + 2``), or, for ``periodization``, the periodic
  wrap of the circularly padded coefficients (length ``2n``).

Extensions are precomputed index plans (one gather), cached per signal length
and device, so memory stays linear in the signal length.

FiGKD's band weighting (:func:`weighted_bands`: weight each band, then
reconstruct or concatenate) is a fixed linear map of the signal;
:func:`band_operator` builds its matrix once from the transform above.
"""
import difflib
import functools
from typing import List, Sequence, Tuple, Union

import pywt
import torch
import torch.nn.functional as F

__all__ = ['wavedec', 'waverec', 'dwt_max_level', 'check_wavelet',
           'check_mode', 'coeff_lengths', 'MODES', 'weighted_bands',
           'band_operator']

MODES = tuple(pywt.Modes.modes)
_INDEX_MODES = ('symmetric', 'reflect', 'periodic', 'constant')
_LINEAR_MODES = ('smooth', 'antisymmetric', 'antireflect')

WaveletLike = Union[str, pywt.Wavelet]


def check_wavelet(wavelet: WaveletLike) -> pywt.Wavelet:
    """Return the ``pywt.Wavelet`` for a name, or raise with close names."""
    if isinstance(wavelet, pywt.Wavelet):
        wavelet = wavelet.name  # built-in wavelets only: filters are cached
    names = pywt.wavelist(kind='discrete')
    if wavelet not in names:
        close = difflib.get_close_matches(str(wavelet), names, n=5,
                                          cutoff=0.5)
        hint = f' Did you mean one of {close}?' if close else ''
        raise ValueError(
            f'Unknown discrete wavelet {wavelet!r}.{hint} Any name in '
            "pywt.wavelist(kind='discrete') works, e.g. 'haar', 'db4', "
            "'sym8'.")
    return pywt.Wavelet(wavelet)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f'Unknown signal extension mode {mode!r}; use one '
                         f'of {list(MODES)} (pywt.Modes.modes).')
    return mode


def dwt_max_level(length: int, wavelet: WaveletLike) -> int:
    """Deepest useful level, as ``pywt.dwt_max_level``."""
    return pywt.dwt_max_level(length, check_wavelet(wavelet).dec_len)


def _dwt_length(n: int, filter_len: int, mode: str) -> int:
    if mode == 'periodization':
        return (n + 1) // 2
    return (n + filter_len - 1) // 2


def coeff_lengths(length: int, wavelet: WaveletLike, level: int,
                  mode: str) -> List[int]:
    """Lengths of ``[cA_n, cD_n, ..., cD_1]`` for a signal of ``length``."""
    filter_len = check_wavelet(wavelet).dec_len
    lengths, n = [], length
    for _ in range(level):
        n = _dwt_length(n, filter_len, mode)
        lengths.append(n)
    return [lengths[-1]] + lengths[::-1]


# ---------------------------------------------------------------- filters
@functools.lru_cache(maxsize=None)
def _filters(name: str, dtype: torch.dtype,
             device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """(analysis, synthesis) weights of shape (2, 1, F), low pass first.

    conv1d correlates, so the analysis filters are flipped; conv_transpose1d
    places ``c[k] * w`` at ``2k``, so the synthesis filters are used as is.
    """
    dec_lo, dec_hi, rec_lo, rec_hi = pywt.Wavelet(name).filter_bank
    analysis = torch.tensor([dec_lo[::-1], dec_hi[::-1]], dtype=torch.float64)
    synthesis = torch.tensor([rec_lo, rec_hi], dtype=torch.float64)
    return (analysis.unsqueeze(1).to(device=device, dtype=dtype),
            synthesis.unsqueeze(1).to(device=device, dtype=dtype))


# ----------------------------------------------------------- extensions
def _extension_terms(n: int, pos: int, mode: str):
    """Extended sample ``pos`` of a length-``n`` signal as [(index, coef)]."""
    if 0 <= pos < n:
        return [(pos, 1.0)]
    if mode == 'periodic':
        return [(pos % n, 1.0)]
    if mode == 'periodization':
        # PyWavelets repeats the last sample of an odd signal, then treats
        # the even-length result as periodic.
        return [(min(pos % (n + n % 2), n - 1), 1.0)]
    if mode in ('symmetric', 'reflect'):
        # Unfold the mirror as often as needed (period 2n or 2n - 2).
        period = 2 * n if mode == 'symmetric' else max(2 * n - 2, 1)
        p = pos % period
        if mode == 'symmetric':
            return [(p if p < n else period - 1 - p, 1.0)]
        return [(p if p < n else period - p, 1.0)]
    left = pos < 0
    k = -pos if left else pos - (n - 1)  # distance past the edge, >= 1
    edge = 0 if left else n - 1

    def inner(i):  # the i-th sample counted inwards from the edge
        return i if left else n - 1 - i

    if mode == 'constant':
        return [(edge, 1.0)]
    if mode == 'smooth':
        if n < 2:
            return [(edge, 1.0)]
        return [(edge, 1.0 + k), (inner(1), -float(k))]
    if k > n - (mode == 'antireflect'):
        raise ValueError(f'{mode!r} extension by {k} samples needs a signal '
                         f'longer than {n}; use a smaller level.')
    if mode == 'antisymmetric':
        return [(inner(k - 1), -1.0)]
    if mode == 'antireflect':
        return [(edge, 2.0), (inner(k), -1.0)]
    raise AssertionError(mode)


@functools.lru_cache(maxsize=256)
def _extension_plan(n: int, start: int, stop: int, mode: str,
                    device: torch.device):
    """Gather plan for extended positions ``start..stop-1`` of a signal.

    Returns ``None`` (nothing to extend), ``('index', idx)`` (one gather) or
    ``('linear', idx (L, 2), coef (L, 2))`` (two gathers and a weighted sum).
    """
    if start == 0 and stop == n:
        return None  # e.g. haar on an even length: no extension at all
    terms = [_extension_terms(n, p, mode) for p in range(start, stop)]
    if all(len(t) == 1 and t[0][1] == 1.0 for t in terms):
        idx = torch.tensor([t[0][0] for t in terms], device=device)
        return ('index', idx)
    pairs = [t + [(t[0][0], 0.0)] * (2 - len(t)) for t in terms]
    idx = torch.tensor([[i for i, _ in p] for p in pairs], device=device)
    coef = torch.tensor([[c for _, c in p] for p in pairs],
                        dtype=torch.float64, device=device)
    return ('linear', idx, coef)


def _extend(x: torch.Tensor, start: int, stop: int, mode: str) -> torch.Tensor:
    n = x.shape[-1]
    if mode == 'zero':
        return F.pad(x, (-start, stop - n))
    plan = _extension_plan(n, start, stop, mode, x.device)
    if plan is None:
        return x
    if plan[0] == 'index':
        return x.index_select(-1, plan[1])
    _, idx, coef = plan
    return (x[..., idx] * coef.to(x.dtype)).sum(-1)


# --------------------------------------------------------- one level
def _dwt_level(x: torch.Tensor, name: str, mode: str) -> torch.Tensor:
    """One analysis level of (B, N) signals: (B, 2, n) holding [cA, cD]."""
    analysis, _ = _filters(name, x.dtype, x.device)
    filter_len = analysis.shape[-1]
    n = x.shape[-1]
    if mode == 'periodization':
        # The filter is centred at F/2: pad F/2 - 1 samples per side.
        half = filter_len // 2 - 1
        padded = _extend(x, -half, n + n % 2 + half, 'periodization')
    else:
        out = (n + filter_len - 1) // 2
        padded = _extend(x, 2 - filter_len, 2 * out, mode)
    return F.conv1d(padded.unsqueeze(1), analysis, stride=2)


def _idwt_level(coeffs: torch.Tensor, name: str, mode: str) -> torch.Tensor:
    """One synthesis level: (B, 2, n) [cA, cD] to (B, length) signals."""
    _, synthesis = _filters(name, coeffs.dtype, coeffs.device)
    filter_len = synthesis.shape[-1]
    if mode == 'periodization':
        n = coeffs.shape[-1]
        wrap = -(-filter_len // 4)  # coefficients each side to wrap around
        coeffs = _extend(coeffs, -wrap, n + wrap, 'periodic')
        crop = 2 * wrap + filter_len // 2 - 1
    else:
        crop = filter_len - 2
    return F.conv_transpose1d(coeffs, synthesis, stride=2,
                              padding=crop).squeeze(1)


# ------------------------------------------------------------ public
def _check_level(length: int, wavelet: pywt.Wavelet, level) -> int:
    max_level = pywt.dwt_max_level(length, wavelet.dec_len)
    if level is None:
        return max_level
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise ValueError(f'level must be an integer >= 0, got {level!r}.')
    if level > max_level:
        raise ValueError(
            f'level {level} is too deep for a signal of length {length} with '
            f'wavelet {wavelet.name!r} (filter length {wavelet.dec_len}): '
            f'the deepest level is {max_level} (pywt.dwt_max_level). Use a '
            'smaller level or a shorter wavelet.')
    return level


def wavedec(data: torch.Tensor, wavelet: WaveletLike, mode: str = 'symmetric',
            level=None) -> List[torch.Tensor]:
    """Multilevel 1-D DWT along the last dimension, as ``pywt.wavedec``.

    Args:
        data (Tensor): signals of shape (..., N), any float dtype and device.
        wavelet (str | pywt.Wavelet): a discrete wavelet, e.g. ``'db4'``.
        mode (str): signal extension mode, one of ``pywt.Modes.modes``.
        level (int, optional): decomposition level; ``None`` is the deepest
            (``pywt.dwt_max_level``). Deeper levels raise ``ValueError``,
            where PyWavelets only warns.

    Returns:
        list[Tensor]: ``[cA_n, cD_n, ..., cD_1]``, each of shape (..., n_i).
    """
    wavelet = check_wavelet(wavelet)
    mode = check_mode(mode)
    if not torch.is_floating_point(data):
        raise TypeError(f'wavedec needs a floating point tensor, got '
                        f'{data.dtype}.')
    level = _check_level(data.shape[-1], wavelet, level)
    lead = data.shape[:-1]
    approx = data.reshape(-1, data.shape[-1])
    details = []
    for _ in range(level):
        bands = _dwt_level(approx, wavelet.name, mode)
        approx, detail = bands[:, 0], bands[:, 1]
        details.append(detail)
    coeffs = [approx] + details[::-1]
    return [c.reshape(*lead, c.shape[-1]) for c in coeffs]


def waverec(coeffs: Sequence[torch.Tensor], wavelet: WaveletLike,
            mode: str = 'symmetric') -> torch.Tensor:
    """Multilevel 1-D inverse DWT along the last dimension (``pywt.waverec``).

    Args:
        coeffs (list[Tensor]): ``[cA_n, cD_n, ..., cD_1]`` as from
            :func:`wavedec`; an entry may be ``None`` (treated as zeros).
        wavelet (str | pywt.Wavelet): the wavelet used for the analysis.
        mode (str): the extension mode used for the analysis.

    Returns:
        Tensor: the reconstructed signals. Like PyWavelets, the length can
        exceed the original one by a sample (odd lengths); trim as needed.
    """
    wavelet = check_wavelet(wavelet)
    mode = check_mode(mode)
    if len(coeffs) < 2:
        raise ValueError('waverec needs at least [cA_n, cD_n], got '
                         f'{len(coeffs)} array(s).')
    approx = coeffs[0]
    for detail in coeffs[1:]:
        ref = detail if detail is not None else approx
        if approx is None:
            approx = torch.zeros_like(ref)
        if detail is None:
            detail = torch.zeros_like(approx)
        if approx.shape[-1] == detail.shape[-1] + 1:
            approx = approx[..., :-1]  # PyWavelets' rule for odd lengths
        if approx.shape != detail.shape:
            raise ValueError(
                f'Coefficient shapes {tuple(approx.shape)} and '
                f'{tuple(detail.shape)} do not fit one level of a DWT.')
        lead = detail.shape[:-1]
        pair = torch.stack([approx, detail], dim=-2)
        approx = _idwt_level(pair.reshape(-1, 2, pair.shape[-1]),
                            wavelet.name, mode)
        approx = approx.reshape(*lead, approx.shape[-1])
    return approx


# ------------------------------------------------ band-weighting operator
def weighted_bands(x: torch.Tensor, wavelet: WaveletLike, mode: str,
                   low_weight: float, high_weights: Sequence[float],
                   target: str = 'reconstruct') -> torch.Tensor:
    """Weight the wavelet bands of signals (..., N), level by level.

    Args:
        x (Tensor): signals of shape (..., N).
        wavelet (str | pywt.Wavelet): a discrete wavelet.
        mode (str): signal extension mode.
        low_weight (float): weight of the approximation ``cA_n``.
        high_weights (Sequence[float]): weights of ``[cD_n, ..., cD_1]``,
            coarsest first (the order of :func:`wavedec`'s output); their
            count is the level.
        target (str): ``'reconstruct'``: :func:`waverec` of the weighted
            bands, trimmed to N samples; ``'coefficients'``: the weighted
            bands concatenated, bands of weight 0 left out.

    The map is linear in ``x``; :func:`band_operator` is its matrix.
    """
    coeffs = wavedec(x, wavelet, mode, len(high_weights))
    weights = [low_weight, *high_weights]
    if target == 'coefficients':
        return torch.cat([c * w for c, w in zip(coeffs, weights) if w], -1)
    weighted = [c * w for c, w in zip(coeffs, weights)]
    return waverec(weighted, wavelet, mode)[..., :x.shape[-1]]


def band_operator(length: int, wavelet: WaveletLike, mode: str,
                  low_weight: float, high_weights: Sequence[float],
                  target: str = 'reconstruct') -> torch.Tensor:
    """:func:`weighted_bands` of length-``length`` signals as a matrix.

    Returns the float64 matrix ``M`` of shape (length, D) with
    ``weighted_bands(x, ...) == x @ M``, built by sending the identity
    through the exact transform; D is ``length`` for ``'reconstruct'``.
    """
    identity = torch.eye(length, dtype=torch.float64)
    return weighted_bands(identity, wavelet, mode, low_weight, high_weights,
                          target)
