"""The cell-centred radial grid shared by the noisy radial DD and the Gibbs fixed point.

Cells of width h = r_max / n (centres r_i = (i + 1/2) h); a density rho (per unit r) on the
cells is the radial law rhobar of r = ||w|| (PNAS 2018 noisy DD, eq. 12 restricted to radial
laws; COLT 2019 App. F.3 for the free energy).  ``RadialGrid`` evaluates psi_lambda, R, the
free energy F and the Gibbs map on the grid from the one reduced feature model
(``mfnn.problem.reduced.RadialModel``); ``GridMethod`` holds what both grid methods share:
the fields (beta, lambda, r_max, n_cells, rho0, the interaction), their validation, the grid and
the initial density.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..numerics.pytree import is_tracer, real
from ..problem.problem import Problem
from ..problem.reduced import RadialModel, interaction_dimension
from ._driver import Method
from .fields import static_int

__all__ = ["GridMethod", "RadialGrid"]


class RadialGrid(eqx.Module):
    """The radial feature model on a cell-centred grid: everything the PDE, F and Gibbs need.

    psi and R come from ``RadialModel`` (``mfnn.problem.reduced``) with the features evaluated at
    the cell centres once (``coeffs``) and the cell masses rho_i h as the measure's weights.
    """

    model: RadialModel
    r: np.ndarray  # cell centres
    h: np.ndarray  # cell width
    d: np.ndarray  # dimension in the Jacobian r^{d-1}
    lam: np.ndarray
    beta: np.ndarray

    @classmethod
    def build(cls, problem: Problem, *, r_max: float, n_cells: int, lam: float, beta: float,
              d_interaction="finite", n_hermite: int = 24):
        check(r_max > 0, "r_max", f"must be > 0, got {r_max}")
        check(n_cells >= 4, "n_cells", f"must be >= 4, got {n_cells}")
        check(beta > 0 and math.isfinite(beta), "beta", f"must be finite and > 0, got {beta}")
        check(lam >= 0, "lam", f"must be >= 0, got {lam}")
        model = RadialModel.from_problem(problem, d_interaction, n_hermite)
        return cls.of(model, r_max=r_max, n_cells=n_cells, lam=lam, beta=beta, d=problem.d)

    @classmethod
    def of(cls, model: RadialModel, *, r_max, n_cells: int, lam, beta, d):
        """The grid without validation (traced numbers allowed): cells (i + 1/2) h, h = r_max / n_cells."""
        f64 = lambda x: x if is_tracer(x) else np.asarray(x, dtype=np.float64)  # noqa: E731
        h = f64(r_max) / n_cells
        return cls(model, (np.arange(n_cells) + 0.5) * h, h, f64(d), f64(lam), f64(beta))

    @property
    def coeffs(self):
        """(2, K, n): the features a chat_k(tau r_i, b) at the cell centres."""
        return self.model.features(jnp.asarray(self.r))

    def moments(self, rho, A=None):
        """Feature moments S = sum_i phi(r_i) rho_i h of the density rho (per unit r)."""
        A = self.coeffs if A is None else A
        return self.model.moments_from_features(A, rho * self.h)

    def psi_lambda_from_moments(self, S, A=None):
        """psi_lambda(r_i) = psi(r_i; S) + lambda r_i^2 / 2 for a measure with moments S."""
        A = self.coeffs if A is None else A
        return self.model.psi_from_features(A, S) + 0.5 * self.lam * jnp.asarray(self.r) ** 2

    def psi_lambda(self, rho, A=None):
        """psi_lambda(r_i; rhobar) on the grid for a density rho (per unit r)."""
        A = self.coeffs if A is None else A
        return self.psi_lambda_from_moments(self.moments(rho, A), A)

    def risk(self, rho, A=None):
        return self.model.risk_from_moments(self.moments(rho, A))

    def free_energy(self, rho, A=None):
        """F = R/2 + (lambda/2) int r^2 rho + beta^{-1} int rho log(rho / r^{d-1})."""
        r = jnp.asarray(self.r)
        m = rho * self.h
        ent = jnp.sum(jnp.where(rho > 0, m * (jnp.log(jnp.where(rho > 0, rho, 1.0)) - (self.d - 1) * jnp.log(r)), 0.0))
        return 0.5 * self.risk(rho, A) + 0.5 * self.lam * jnp.sum(r * r * m) + ent / self.beta

    def log_gibbs_from_moments(self, S, A=None):
        """log of the normalized r^{d-1} exp(-beta psi_lambda(r; S)) on the grid (density per unit r)."""
        lg = (self.d - 1) * jnp.log(jnp.asarray(self.r)) - self.beta * self.psi_lambda_from_moments(S, A)
        return lg - jax.scipy.special.logsumexp(lg) - jnp.log(self.h)

    def log_gibbs(self, rho, A=None):
        """log of the normalized r^{d-1} exp(-beta psi_lambda(r; rho)) on the grid."""
        return self.log_gibbs_from_moments(self.moments(rho, A), A)

    def initial_density(self, problem: Problem):
        """Density of ||w|| for w ~ N(0, kappa^2/d I_d) (a scaled chi_d), normalized on the grid."""
        from scipy import stats

        d, kappa = problem.d, problem.init.kappa
        scale = kappa / math.sqrt(d)
        rho = stats.chi.pdf(self.r / scale, d) / scale
        return rho / (rho.sum() * self.h)


class GridMethod(Method):
    """Base of the methods on a ``RadialGrid`` (``NoisyRadialPDE``, ``GibbsFixedPoint``).

    Traced: ``beta``, ``lam``, ``r_max`` and the problem's numbers; static: ``n_cells``,
    ``d_interaction``, ``n_hermite``.  ``rho0``: initial density on the cells (default: the law
    of ||w|| under the init).  Save intervals run from the previous save "time" to the next.
    """

    beta: float = real("beta")
    lam: float = real("lam", 0.0)
    r_max: float = real("r_max", 8.0)
    n_cells: int = static_int("n_cells", 400, minimum=4, maximum=2**22)
    rho0: np.ndarray | None = None
    d_interaction: str = eqx.field(static=True, default="finite",
                                   converter=lambda v: "inf" if math.isinf(interaction_dimension(1, v)) else "finite")
    n_hermite: int = static_int("n_hermite", 24, minimum=1, maximum=4096)

    def __check_init__(self):
        if is_tracer(self.beta):
            return
        check(self.beta > 0, "beta", f"must be finite and > 0, got {self.beta}")
        check(self.lam >= 0, "lam", f"must be >= 0, got {self.lam}")
        check(self.r_max > 0, "r_max", f"must be > 0, got {self.r_max}")

    def dims(self, name):
        return ("cell",) if name == "density" else ()

    def grid(self, problem, validate=False) -> RadialGrid:
        model = RadialModel.from_problem(problem, self.d_interaction, self.n_hermite, validate=validate)
        return RadialGrid.of(model, r_max=self.r_max, n_cells=self.n_cells, lam=self.lam, beta=self.beta, d=problem.d)

    def initial(self, problem, times):
        """(grid, rho0 checked, segment inputs t0 / t1 / work) for ``init``."""
        grid = self.grid(problem, validate=True)
        rho0 = grid.initial_density(problem) if self.rho0 is None else np.asarray(self.rho0, dtype=float)
        check(rho0.shape == (self.n_cells,) and bool(np.all(rho0 >= 0)), "rho0",
              f"must be {self.n_cells} non-negative values")
        t0 = np.concatenate([[0.0], times[:-1]])
        return grid, rho0, {"t0": t0, "t1": times, "work": times - t0}
