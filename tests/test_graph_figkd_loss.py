"""GraphFiGKDLoss: FiGKD's bands over a class graph, against references
computed here with scipy's Laplacian and eigensolver and MMRazor's
KLDivergence."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from mmrazor.models import KLDivergence
from mmrazor.registry import MODELS
from scipy.sparse.csgraph import laplacian

import figkd_mmrazor  # noqa: F401
from figkd_mmrazor.losses import GraphFiGKDLoss, graph_band_operator


def _graph(c=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(c, 6))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows @ rows.T  # a cosine similarity, entries in [-1, 1]


def _logits(n=8, c=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 3, torch.randn(n, c,
                                                           generator=g) * 3


def _reference_operator(sim, low_bands, low, high):
    """scipy's Laplacian and eigensolver on the dense graph."""
    w = (sim + sim.T) / 2
    off = ~np.eye(len(w), dtype=bool)
    w = np.where(off, w - min(w[off].min(), 0), 0)
    values, vectors = scipy.linalg.eigh(laplacian(w))
    band = np.where(np.arange(len(w)) < low_bands, low, high)
    return vectors @ np.diag(band) @ vectors.T


def test_registered_and_all_bands_equal_mmrazor_kd():
    sim = _graph()
    s, t = _logits()
    loss = MODELS.build(dict(type='GraphFiGKDLoss', class_graph=sim,
                             low_weight=1.0, high_weights=1.0, tau=4.0))
    assert isinstance(loss, GraphFiGKDLoss)
    torch.testing.assert_close(loss(s, t), KLDivergence(tau=4.0)(s, t),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('low_bands', [1, 5, 10, 19])
def test_operator_matches_scipy_and_removes_the_smooth_part(low_bands):
    sim = _graph(seed=low_bands)
    got = graph_band_operator(sim, low_bands, 0.0, 1.0).numpy()
    np.testing.assert_allclose(got, _reference_operator(
        sim, low_bands, 0.0, 1.0), atol=1e-10)
    # The mean (the constant graph frequency) is always in the low band.
    assert np.abs(np.ones(20) @ got).max() < 1e-10
    # Low and high parts add up to the logits.
    low = graph_band_operator(sim, low_bands, 1.0, 0.0).numpy()
    np.testing.assert_allclose(low + got, np.eye(20), atol=1e-10)


def test_two_communities_low_band_is_their_means():
    """Two groups of classes alike within, unlike across: with two low
    bands (the constant and the group indicator), logits constant on each
    group have no high-frequency part left."""
    group = np.array([0] * 6 + [1] * 6)
    sim = np.where(group[:, None] == group[None, :], 1.0, 0.05)
    op = graph_band_operator(sim, 2, 0.0, 1.0)
    flat = torch.tensor(np.where(group == 0, 2.0, -1.5))
    assert flat.double() @ op == pytest.approx(0.0, abs=1e-9)


def test_gradient_matches_autograd_through_the_reference():
    sim = _graph(seed=3)
    s, t = _logits(n=5, seed=3)
    s.requires_grad_(True)
    loss = GraphFiGKDLoss(sim, low_bands=7, low_weight=0.25)
    grad, = torch.autograd.grad(loss(s, t), s)
    op = torch.from_numpy(_reference_operator(sim, 7, 0.25, 1.0))
    s64 = s.detach().double().requires_grad_(True)
    ref = 16 * F.kl_div(F.log_softmax(s64 @ op / 4, 1),
                        F.softmax(t.double() @ op / 4, 1),
                        reduction='batchmean')
    want, = torch.autograd.grad(ref, s64)
    torch.testing.assert_close(grad.double(), want, rtol=1e-4, atol=1e-7)


def test_graph_from_a_file_and_bad_graphs(tmp_path):
    sim = _graph()
    path = tmp_path / 'graph.json'
    path.write_text(json.dumps(dict(similarity=sim.tolist())))
    s, t = _logits()
    assert torch.equal(GraphFiGKDLoss(str(path))(s, t),
                       GraphFiGKDLoss(sim)(s, t))
    with pytest.raises(ValueError, match='square'):
        GraphFiGKDLoss(np.ones((3, 4)))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        GraphFiGKDLoss(str(tmp_path / 'nope.json'))
    with pytest.raises(ValueError, match='low_bands must be in 1..19'):
        GraphFiGKDLoss(sim, low_bands=20)
    with pytest.raises(ValueError, match='are equal'):
        GraphFiGKDLoss(np.ones((6, 6)), low_bands=2)  # a clique
    with pytest.raises(ValueError, match='one number'):
        GraphFiGKDLoss(sim, high_weights=[1.0, 0.5])
    with pytest.raises(ValueError, match='class_graph has 20 classes but '
                       'the logits have 21'):
        GraphFiGKDLoss(sim)(*_logits(c=21))
