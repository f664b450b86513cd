"""Library helpers behind the PNAS experiments: save-time grids (analysis.timegrid), SGD-vs-DD
comparisons (analysis.compare), the even activation shape (problem.shapes), config pieces."""

import numpy as np
import pytest

import mfnn  # noqa: F401  (float64)
from mfnn.analysis.compare import (block_norm_means, histogram_vs_density, max_abs_gap, particle_density,
                                   replica_stats, risk_table)
from mfnn.analysis.timegrid import extend_geometric, log_save_times, nearest_indices, snap_to_steps
from mfnn.errors import ConfigError
from mfnn.problem.shapes import HALF_BREAKPOINTS, HALF_VALUES, even_piecewise_linear


@pytest.mark.parametrize("eps", [1e-5, 3e-4, 0.07])
def test_log_save_times_on_step_grid(eps):
    ts = log_save_times(4.0, 10, eps, extra=(1.0, 2.5))
    k = ts / eps
    # every time is a whole number of steps (up to float rounding of k * eps), sorted and unique
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert ts[0] == 0.0 and np.all(np.diff(ts) > 0)
    # t_max and the extra times are kept to within half a step
    for t in (4.0, 1.0, 2.5):
        assert np.min(np.abs(ts - t)) <= eps / 2 + 1e-12


def test_log_save_times_unsnapped_is_geometric():
    ts = log_save_times(10.0, 5, decades=2)
    # 0 and n_times - 1 = 4 geometric points over 2 decades: ratio 100^(1/3)
    np.testing.assert_allclose(ts, [0.0, 0.1, 0.1 * 100 ** (1 / 3), 0.1 * 100 ** (2 / 3), 10.0], rtol=1e-14)
    # snapping to eps = 1 merges 0.1 and 0.46 into 0 and rounds 2.15 to 2
    np.testing.assert_array_equal(log_save_times(10.0, 5, 1.0, decades=2), [0.0, 2.0, 10.0])


def test_timegrid_helpers_and_errors():
    np.testing.assert_array_equal(snap_to_steps([0.26, 0.0, 0.24, 1.0], 0.5), [0.0, 0.5, 1.0])
    ext = extend_geometric(10.0, 1000.0, 3)
    np.testing.assert_allclose(ext, [100.0, 1000.0])
    assert extend_geometric(10.0, 10.0).size == 0 and extend_geometric(0.0, 5.0).size == 0
    assert nearest_indices([0.0, 1.0, 4.0], [0.9, 3.0, 100.0]) == [1, 2, 2]
    for call, field in ((lambda: log_save_times(-1.0, 5), "t_max"), (lambda: log_save_times(1.0, 1), "n_times"),
                        (lambda: snap_to_steps([1.0], 0.0), "eps"), (lambda: nearest_indices([], [1.0]), "times")):
        with pytest.raises(ConfigError) as e:
            call()
        assert e.value.field == field


def test_histogram_vs_density_normalization_and_agreement():
    rng = np.random.default_rng(0)
    # SGD-like samples of a law and the law's quantile particles: densities agree to sampling error
    samples = np.abs(rng.normal(1.0, 0.3, size=(2, 4, 5000)))  # (panel, replica, neuron)
    u = (np.arange(4000) + 0.5) / 4000
    from scipy.stats import norm

    quantiles = np.abs(norm.ppf(u, loc=1.0, scale=0.3))[None].repeat(2, 0)
    edges, hs, hd = histogram_vs_density(samples, quantiles, bins=20)
    w = np.diff(edges)
    assert edges[0] == 0.0 and edges[-1] == pytest.approx(1.05 * max(samples.max(), quantiles.max()))
    np.testing.assert_allclose((hs * w).sum(1), 1.0, atol=1e-12)  # all mass inside the bins
    np.testing.assert_allclose((hd * w).sum(1), 1.0, atol=1e-12)
    # 20000 samples per panel: per-bin mass error ~ sqrt(p / n) <= 0.0035; 5 sigma on the density
    assert np.max(np.abs(hs - hd) * w) < 0.02
    # particle_density keeps mass outside the bins out (normalized by the count, not the in-range mass)
    d = particle_density(np.array([0.5, 1.5, 3.0, 9.0]), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(d, [0.25, 0.25])
    with pytest.raises(ConfigError):
        histogram_vs_density(samples, quantiles[:1], bins=10)


def test_replica_stats_and_risk_table():
    risk = np.array([[1.0, 0.5, 0.2], [1.2, 0.7, 0.2]])
    mean, std = replica_stats(risk)
    np.testing.assert_allclose(mean, [1.1, 0.6, 0.2])
    np.testing.assert_allclose(std, [np.sqrt(0.02), np.sqrt(0.02), 0.0])  # ddof = 1
    assert np.all(replica_stats(risk[:1])[1] == 0.0)
    dd = np.array([1.0, 0.55, 0.25])
    rows = risk_table([0.0, 1.0, 2.0], risk, {"dd_risk": dd}, gap_to="dd_risk")
    assert [r["t"] for r in rows] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose([r["gap"] for r in rows], mean - dd)
    assert max_abs_gap(risk, dd) == pytest.approx(0.1)
    assert np.isnan(max_abs_gap(np.zeros((2, 0)), np.zeros(0)))


def test_block_norm_means():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 50, 7))
    a, b = rng.normal(size=(3, 50)), rng.normal(size=(3, 50))
    m = block_norm_means({"a": a, "b": b, "w": w}, s0=2)
    # r1^2 + r2^2 = ||w||^2 neuron by neuron; compare the means with a direct loop
    r1 = np.array([[np.sqrt(np.sum(w[i, j, :2] ** 2)) for j in range(50)] for i in range(3)]).mean(1)
    np.testing.assert_allclose(m["r1"], r1, rtol=1e-13)
    np.testing.assert_allclose(m["a"], a.mean(1))
    with pytest.raises(ConfigError):
        block_norm_means({"a": a, "b": b, "w": w}, s0=7)


def test_even_piecewise_linear_shape():
    act = even_piecewise_linear(HALF_BREAKPOINTS, HALF_VALUES)
    t = np.linspace(0, 3, 301)
    np.testing.assert_allclose(np.asarray(act(t)), np.asarray(act(-t)), rtol=0, atol=1e-13)  # even
    knots = np.array((0.0,) + HALF_BREAKPOINTS)
    np.testing.assert_allclose(np.asarray(act(knots)), HALF_VALUES, atol=1e-15)
    np.testing.assert_allclose(np.asarray(act(-knots)), HALF_VALUES, atol=1e-15)
    assert float(act(5.0)) == pytest.approx(HALF_VALUES[-1])  # flat beyond the last breakpoint
    # linear between knots: the midpoint of (0.3, 1.0) is the mean of the values there
    assert float(act(0.65)) == pytest.approx(0.5 * (HALF_VALUES[2] + HALF_VALUES[3]))


def test_config_pieces_validate_and_cost():
    from dataclasses import dataclass

    from mfnn.experiments.base import ExperimentConfig
    from mfnn.experiments.pieces import DDFields, RampFields, SGDFields

    @dataclass(frozen=True)
    class C(RampFields, SGDFields, DDFields, ExperimentConfig):
        d: int = 10
        eps: float = 1e-3

    C().validate()
    assert C().eps == 1e-3 and C().sgd_method().eps == 1e-3
    assert float(C().activation()(1.0)) == pytest.approx(2.5)  # ramp midpoint: (s1 + s2) / 2
    for field, value in (("t2", 0.1), ("n_neurons", 0), ("eps", 0.0), ("replicas", 0), ("dtype", "int8"),
                         ("dd_particles", 5), ("dd_rtol", 0.0)):
        with pytest.raises(ConfigError) as e:
            C(**{field: value}).validate()
        assert e.value.field == field
    small, big = C().sgd_cost(10, 1.0, 10), C(n_neurons=10 ** 6).sgd_cost(10, 1.0, 10)
    assert big[0] > small[0] and big[1] > small[1]
    assert C(eps=1e-12).sgd_cost(10, 1.0, 10)[1] > 1e6  # 1e12 steps at >= 2e-6 s each
