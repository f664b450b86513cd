"""Reductions of the RV 2018 experiments (mfnn.analysis.particle_systems)."""

from __future__ import annotations

import numpy as np
import pytest

from mfnn.analysis.particle_systems import (collapse_spread, great_circle, loss_table, n_exponent, n_scaled_variance,
                                            sphere_slice)
from mfnn.errors import ConfigError


def test_n_exponent_recovers_a_power_law_within_its_interval():
    rng = np.random.default_rng(0)
    ns = [32, 64, 128, 256, 512]
    losses = [3.0 * n ** -1.0 * np.exp(0.05 * rng.standard_normal(8)) for n in ns]
    fit = n_exponent(loss_table(ns, losses))
    assert fit["ci_low"] < -1.0 < fit["ci_high"] and fit["ci_high"] - fit["ci_low"] < 0.2


def test_n_scaled_variance_is_flat_for_iid_charges():
    """f_n = (1/n) sum c_i phi_i with i.i.d. particles: n Var f_n = Var(c phi) for every n (CLT)."""
    rng = np.random.default_rng(1)
    out = []
    for n in (16, 64, 256):
        c, phi = rng.standard_normal((400, n, 5)), rng.uniform(size=(400, n, 5))
        v, se = n_scaled_variance(n, (c * phi).mean(axis=1))
        out.append((v, se))
    exact = 1.0 / 3.0  # E c^2 phi^2 = 1 * E U^2
    for v, se in out:
        assert abs(v - exact) < 4 * se


def test_collapse_spread_separates_equal_and_different_theta():
    thetas = [0.01, 0.01, 0.01, 0.04, 0.04, 0.16]
    losses = [1.0, 1.02, 0.98, 4.0, 4.1, 16.0]
    c = collapse_spread(thetas, losses)
    assert c["spread_equal_theta"] < 0.05 < 1.0 < c["spread_across_theta"]
    with pytest.raises(ConfigError):
        collapse_spread([0.1, 0.2], [1.0, 2.0])


def test_slices_lie_on_the_sphere():
    _, _, x = sphere_slice(5, 9)
    _, y = great_circle(10, 7, 2, 5)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.sqrt(5), rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.sqrt(10), rtol=1e-14)
