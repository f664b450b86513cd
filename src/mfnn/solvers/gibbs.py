"""The self-consistent Gibbs measure of the noisy radial DD (PNAS 2018 eq. 12 and its Gibbs measure).

rhobar_* ~ r^{d-1} exp(-beta psi_lambda(r; rhobar_*)) minimizes the free energy
F(rho) = (1/2) R(rho) + (lambda/2) int ||theta||^2 drho - beta^{-1} Ent(rho) (COLT 2019 App. F.3)
and is the stationary state of ``NoisyRadialPDE`` on the same grid (``radial_grid.py``).
``GibbsFixedPoint`` is the mirror-descent iteration as a method of ``mfnn.solve`` (iteration
counts as save "times"); ``polish_gibbs`` finishes its last save on the host (SciPy)::

    m = GibbsFixedPoint(beta=10.0, lam=0.01)
    g = polish_gibbs(problem, m, mfnn.solve(problem, m, [2000]))   # g.density[-1], g.stats["converged"]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..numerics.pytree import is_tracer, real
from ._driver import Solution
from .fields import finish_observe, kept
from .radial_grid import GridMethod

__all__ = ["GibbsFixedPoint", "polish_gibbs"]


class GibbsFixedPoint(GridMethod):
    """The self-consistent Gibbs measure rhobar_* ~ r^{d-1} exp(-beta psi_lambda(r; rhobar_*)) as a
    method of ``mfnn.solve``.  Not a time evolution: the save "times" are ITERATION COUNTS of the
    entropic mirror descent on the (strictly convex) free energy F,

        log rho <- (1 - eta) log rho + eta log Gibbs(rho)   (normalized; a mirror step of size eta / beta),

    with eta <= ``damping`` halved until F decreases and grown by 1.5 after a success; a segment
    stops early once ``residual`` = max |Gibbs(rho) - rho| / max rho <= ``tol``.  Same grid as
    ``NoisyRadialPDE``, whose stationary states are exactly these fixed points.  Traced: beta, lam,
    r_max, damping, tol and the problem's numbers; static: n_cells, d_interaction, n_hermite.
    Observables: ``density`` (cell), ``residual``, ``free_energy``, ``risk``, ``iterations``.
    ``polish_gibbs`` adds a host-side Newton-type polish (SciPy's hybrid Powell method on the 2K
    feature moments), which is not traceable and so is not part of the method.
    """

    damping: float = real("damping", 1.0)
    tol: float = real("tol", 1e-11)

    label = "Gibbs fixed point"
    default_observables = ("density", "residual", "free_energy", "risk", "iterations")

    def __check_init__(self):
        if is_tracer(self.damping):
            return
        check(0 < self.damping <= 1, "damping", f"must be in (0, 1], got {self.damping}")
        check(self.tol >= 0, "tol", f"must be >= 0, got {self.tol}")

    def _normalize_log(self, grid, lr):
        return lr - jax.scipy.special.logsumexp(lr) - jnp.log(grid.h)

    def init(self, problem, times, key):
        grid, rho, inputs = self.initial(problem, times)
        lr = self._normalize_log(grid, jnp.log(jnp.maximum(jnp.asarray(rho), 1e-300)))
        state = {"lr": lr, "F": grid.free_energy(jnp.exp(lr)), "eta": jnp.asarray(float(self.damping)),
                 "it": jnp.asarray(0), "res": jnp.asarray(jnp.inf)}
        return state, inputs

    def segment(self, problem, state, seg):
        grid = self.grid(problem)
        A = grid.coeffs

        def body(st):
            lr, F, eta = st["lr"], st["F"], st["eta"]
            rho = jnp.exp(lr)
            lg = grid.log_gibbs(rho, A)
            res = jnp.max(jnp.abs(jnp.exp(lg) - rho)) / jnp.max(rho)
            cand = self._normalize_log(grid, (1 - eta) * lr + eta * lg)
            F_c = grid.free_energy(jnp.exp(cand), A)
            ok = F_c <= F + 1e-14 * jnp.maximum(1.0, jnp.abs(F))  # round-off: F is flat near rho_*
            return {"lr": jnp.where(ok, cand, lr), "F": jnp.where(ok, F_c, F),
                    "eta": jnp.where(ok, jnp.minimum(eta * 1.5, self.damping), eta * 0.5), "it": st["it"] + 1,
                    "res": res}

        return jax.lax.while_loop(lambda st: (st["res"] > self.tol) & (st["it"] < seg["t1"]), body, state)

    def observe(self, problem, state, names, fn):
        grid, rho = self.grid(problem), jnp.exp(state["lr"])
        out = {}
        if "density" in names:
            out["density"] = rho
        if "residual" in names:
            out["residual"] = state["res"]
        if "free_energy" in names:
            out["free_energy"] = grid.free_energy(rho)
        if "risk" in names:
            out["risk"] = grid.risk(rho)
        if "iterations" in names:
            out["iterations"] = state["it"]
        return finish_observe(out, problem, state, names, fn)


_POLISH_NEWTON = 4  # Newton steps after the hybrid-Powell root


def polish_gibbs(problem, method: GibbsFixedPoint, sol: Solution) -> Solution:
    """The last save of a ``GibbsFixedPoint`` solve, polished when its residual is above ``tol``.

    rho_* depends on rho only through its 2K feature moments S: S = A Gibbs(S) h is solved by
    SciPy's hybrid Powell method with the exact Jacobian, followed by a few exact Newton steps,
    and the candidate with the smallest measured residual is kept.  Returns a one-save
    ``Solution`` with ``density``, ``residual`` (max |Gibbs(rho) - rho| / max rho), ``risk``,
    ``free_energy``, ``iterations`` (mirror steps plus the polish's function evaluations and
    Newton steps) and ``stats["converged"]`` (residual <= tol).  Runs in float64 by context.
    """
    check(isinstance(method, GibbsFixedPoint), "method", "needs the GibbsFixedPoint that produced sol")
    kept(sol)
    check("density" in sol.ys and "residual" in sol.ys and "iterations" in sol.ys, "sol",
          "save density, residual and iterations")
    with jax.enable_x64(True):  # the polish runs outside solve: float64 by context, as solve does
        rho, res, it = _polish(problem, method, np.asarray(sol.density[-1]), float(sol.residual[-1]),
                               int(sol.iterations[-1]))
        grid = method.grid(problem)
        ys = {"density": rho[None], "residual": np.asarray([res]), "risk": np.asarray([float(grid.risk(rho))]),
              "free_energy": np.asarray([float(grid.free_energy(rho))]), "iterations": np.asarray([it])}
    dims = {k: ("time", "cell") if k == "density" else ("time",) for k in ys}
    return Solution(times=sol.times[-1:], ys=ys, dims=dims,
                    stats={**sol.stats, "converged": bool(res <= float(method.tol))}, result=sol.result,
                    message=sol.message)


def _polish(problem, m, rho, res, it):
    """(rho, residual, iterations) after the moment-space root polish (float64)."""
    grid = m.grid(problem)
    A, h = grid.coeffs, grid.h
    rho = jnp.asarray(rho)
    if not res <= float(m.tol):
        from scipy.optimize import root

        def gibbs_of(S):
            return jnp.exp(grid.log_gibbs_from_moments(S, A))

        shape = (2, A.shape[1])
        fun = jax.jit(lambda x: (A @ (gibbs_of(x.reshape(shape)) * h)).ravel() - x)
        jac = jax.jit(jax.jacfwd(fun))
        out = root(lambda x: np.asarray(fun(x)), np.asarray(A @ (rho * h)).ravel(),
                   jac=lambda x: np.asarray(jac(x)), method="hybr", options={"xtol": 1e-14})
        it += int(out.nfev)
        # at beta ~ 1e2 the residual of the root sits at the round-off floor (~1e-11, fluctuating by
        # a factor ~4 between neighbouring S): a few exact Newton steps sample that floor and the
        # candidate with the smallest measured residual is kept
        x = np.asarray(out.x)
        for j in range(_POLISH_NEWTON + 1):
            if j:
                x = x - np.linalg.solve(np.asarray(jac(x)), np.asarray(fun(x)))
            cand = gibbs_of(jnp.asarray(x).reshape(shape))
            new = jnp.exp(grid.log_gibbs(cand, A))
            res_c = float(jnp.max(jnp.abs(new - cand)) / jnp.max(cand))
            if res_c < res:
                rho, res = cand, res_c
        it += _POLISH_NEWTON
    return np.asarray(rho), float(res), int(it)
