"""Certificates and the convex global minimum for radial measures of the isotropic task.

Setting: the isotropic Gaussian task of PNAS 2018 Fig. 1 (unit a sigma(<w, x> + b), only w trained).
A rotation-invariant measure is described by the law rhobar of r = ||w||, here a weighted sum of
point masses sum_j p_j delta_{r_j} (equal weights for DD quantile particles).  With the Hermite
features F_{tau,k}(r) = a chat_k(tau r, b) (``Activation.hermite_coeffs``) and the cosine moments
E[c^k] of two uniform directions on S^{d-1} (``RadialModel.angular_weights`` = E[c^k]/2; d = inf keeps k = 0):

    S_{tau,k}   = sum_j p_j F_{tau,k}(r_j)                               (moments of rhobar)
    v(r)        = -(1/2) [F_{+,0}(r) - F_{-,0}(r)]
    psi(r; rho) = v(r) + (1/2) sum_{tau,k} E[c^k] S_{tau,k} F_{tau,k}(r)    (PNAS 2018 eq. 7's Psi)
    R(rhobar)   = 1 + 2 sum_j p_j v(r_j) + (1/2) sum_{tau,k} E[c^k] S_{tau,k}^2

exactly as ``RadialModel`` (``mfnn.problem.reduced``, the one reduced feature model) evaluates them:
every formula below calls it (here with weights).  Writing B for the matrix with rows
sqrt(E[c^k]/2) F_{tau,k} and c for the vector with +-1/sqrt(2) in the two k = 0 rows and 0
elsewhere, R(p) = ||B p - c||^2: a least-squares problem over the probability simplex, convex in p
(R is convex because U is a positive semi-definite kernel, PNAS 2018 eq. 4), whose gradient is 2 psi(r_i; p).

Certificates (first-order optimality of the convex R, derived here): a measure is a DD fixed point iff psi' = 0 on its support,
a global minimizer of R iff its support lies in argmin_r psi(r; rho); the optimality gap
gap = int psi drho - inf_r psi(r; rho) >= 0 bounds the excess risk, R(rho) - inf R <= 2 gap.
The infimum over r is a GRID SEARCH on [0, r_max] followed by a zoom refinement (three
rounds of 101-point grids) around the best grid minima: the certificate holds up to that search (psi is flat for r >> breakpoints / tau_-
because a bounded sigma saturates, which is how the default r_max is chosen).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..problem.activations import PiecewiseLinear
from ..problem.problem import Problem
from ..problem.reduced import RadialModel


def _model(model_or_problem, d_interaction="finite", n_hermite=24) -> RadialModel:
    if isinstance(model_or_problem, RadialModel):
        return model_or_problem
    if isinstance(model_or_problem, Problem):
        return RadialModel.from_problem(model_or_problem, d_interaction, n_hermite)
    raise ConfigError("model", f"need a RadialModel or a Problem, got {type(model_or_problem).__name__}")


@eqx.filter_jit
def _features(model: RadialModel, r):
    return model.features(r)


@eqx.filter_jit
def _features_and_grads(model: RadialModel, r):
    return model.features_and_grads(r)


def radial_features(model: RadialModel, r, grad: bool = False):
    """F (2, K_active, n) = a chat_k(tau r, b) for tau in (tau_+, tau_-), and dF/dr if ``grad``.

    These are the features of ``RadialModel`` (the orders with E[c^k] > 0: k = 0 only at
    d = inf); the second return value is the vector lam_k = E[c^k] / 2 of those orders (the pair
    weights L of one class).  Compiled once per model structure (its numbers are traced).
    """
    r = jnp.asarray(np.atleast_1d(np.asarray(r, dtype=float)))
    lam = np.asarray(model.angular_weights)
    if grad:
        F, dF = _features_and_grads(model, r)
        return np.asarray(F), lam, np.asarray(dF)
    return np.asarray(_features(model, r)), lam


def _weights(radii, weights):
    radii = np.abs(np.atleast_1d(np.asarray(radii, dtype=float)))
    check(radii.ndim == 1 and radii.size >= 1, "radii", "need a non-empty 1-d array of radii")
    if weights is None:
        p = np.full(radii.size, 1.0 / radii.size)
    else:
        p = np.asarray(weights, dtype=float)
        check(p.shape == radii.shape, "weights", f"need one weight per radius, got {p.shape} vs {radii.shape}")
        check(bool(np.all(p >= 0)) and p.sum() > 0, "weights", "must be non-negative with positive sum")
        p = p / p.sum()
    return radii, p


def _psi_from(model: RadialModel, F_eval, S):
    """psi(r) at features F_eval (NumPy) for a measure with moments S: ``RadialModel`` in NumPy."""
    return np.einsum("tk,tkn->n", np.asarray(model.field(S)), F_eval)


def _risk_from(model: RadialModel, S) -> float:
    return float(model.risk_from_moments(S))


def radial_risk(model_or_problem, radii, weights=None, *, d_interaction="finite", n_hermite=24) -> float:
    """R(rhobar) for rhobar = sum_j p_j delta_{r_j} (equal weights by default; PNAS 2018 eq. 4)."""
    model = _model(model_or_problem, d_interaction, n_hermite)
    radii, p = _weights(radii, weights)
    F, _ = radial_features(model, radii)
    return _risk_from(model, F @ p)


def default_r_max(model: RadialModel, radii=None) -> float:
    """Upper end of the search grid for inf_r psi.

    For a piecewise-linear sigma with breakpoints t_j, chat_k(s, b) varies on s ~ |t_j - b| and
    saturates for s >> max|t_j - b| (bounded sigma: psi tends to a constant); we search
    r <= 8 max|t_j - b| / tau_min, at least 1.5 x the largest radius of the measure.  Other
    activations: r <= 10 (override with ``r_max``).
    """
    act = model.activation
    if isinstance(act, PiecewiseLinear):
        scale = max(abs(t - model.b) for t in act.breakpoints) or 1.0
        r_max = 8.0 * scale / min(model.taus)
    else:
        r_max = 10.0
    if radii is not None and len(radii):
        r_max = max(r_max, 1.5 * float(np.max(radii)))
    return float(r_max)


def _inf_psi(model, S, r_max, n_grid, n_refine):
    """min_r psi(r; S) on [0, r_max]: grid search, then zoom refinement of the best local minima."""
    grid = np.linspace(0.0, r_max, n_grid)
    F, _ = radial_features(model, grid)
    vals = _psi_from(model, F, S)
    interior = np.nonzero((vals[1:-1] <= vals[:-2]) & (vals[1:-1] <= vals[2:]))[0] + 1
    cands = list(interior[np.argsort(vals[interior])][:n_refine]) + [0, n_grid - 1]
    best_r, best = float(grid[np.argmin(vals)]), float(np.min(vals))
    h = grid[1] - grid[0]
    for i in cands:
        # zoom refinement: three rounds of a 101-point grid on [r_i - h, r_i + h], h shrinking 50x
        center, width = float(grid[i]), h
        for _ in range(3):
            fine = np.clip(np.linspace(center - width, center + width, 101), 0.0, r_max)
            Ff, _ = radial_features(model, fine)
            fv = _psi_from(model, Ff, S)
            j = int(np.argmin(fv))
            if fv[j] < best:
                best, best_r = float(fv[j]), float(fine[j])
            center, width = float(fine[j]), width / 50.0
    return best, best_r, grid, vals


def radial_certificates(model_or_problem, radii, weights=None, *, d_interaction="finite", n_hermite=24,
                        r_max=None, n_grid=4001, n_refine=5, support_tol=0.0) -> dict:
    """Fixed-point and optimality certificates for rhobar = sum_j p_j delta_{r_j} (module docstring).

    ``model_or_problem``: a ``RadialModel`` (used as is: finite d or d = inf as it was built) or an
    isotropic ``Problem`` (then ``d_interaction`` = "finite" | "inf" and ``n_hermite`` build it).
    ``weights``: default equal (DD quantile particles / SGD neurons).  Radii with weight
    <= ``support_tol`` are not part of the support.

    Returns a dict of floats:
      risk               R(rhobar)
      stationarity       max over the support of |psi'(r)| = ||grad_w Psi(w; rho)||  (fixed-point residual)
      stationarity_rms   (int psi'^2 drhobar)^(1/2)   (dR/dt = -4 xi x its square)
      psi_mean           int psi drhobar
      psi_min, r_argmin  inf_r psi(r; rhobar) on [0, r_max] (grid search + local refinement)
      gap                psi_mean - psi_min  (>= 0; 0 iff optimal; R - inf R <= 2 gap)
      support_gap        min over the support of psi - psi_min
      risk_lower_bound   risk - 2 gap  (a lower bound on inf R over radial measures, up to the search)
      r_max, n_grid, argmin_at_r_max (True if the minimizer sits at the end of the search interval)
    """
    model = _model(model_or_problem, d_interaction, n_hermite)
    radii, p = _weights(radii, weights)
    check(n_grid >= 3, "n_grid", f"must be >= 3, got {n_grid}")
    F, _, dF = radial_features(model, radii, grad=True)
    S = F @ p
    psi = _psi_from(model, F, S)
    dpsi = _psi_from(model, dF, S)  # psi' = <V + L o S, dphi/dr>
    supp = p > support_tol
    risk = _risk_from(model, S)
    r_max = default_r_max(model, radii) if r_max is None else float(r_max)
    check(r_max > 0, "r_max", f"must be > 0, got {r_max}")
    psi_min, r_arg, _, _ = _inf_psi(model, S, r_max, n_grid, n_refine)
    # the support points themselves are candidates too (the grid may miss them)
    psi_min = min(psi_min, float(np.min(psi[supp])))
    if psi_min == float(np.min(psi[supp])):
        r_arg = float(radii[supp][np.argmin(psi[supp])])
    psi_mean = float(np.dot(p, psi))
    gap = max(psi_mean - psi_min, 0.0)
    return {
        "risk": risk,
        "stationarity": float(np.max(np.abs(dpsi[supp]))),
        "stationarity_rms": float(math.sqrt(np.dot(p, dpsi * dpsi))),
        "psi_mean": psi_mean,
        "psi_min": float(psi_min),
        "r_argmin": float(r_arg),
        "gap": float(gap),
        "support_gap": float(max(np.min(psi[supp]) - psi_min, 0.0)),
        "risk_lower_bound": float(risk - 2.0 * gap),
        "r_max": r_max,
        "n_grid": int(n_grid),
        "argmin_at_r_max": bool(r_arg >= r_max * (1 - 1e-9)),
        "d": "inf" if math.isinf(model.d_interaction) else "finite",
    }


def _project_simplex(y):
    """Euclidean projection onto {p >= 0, sum p = 1} (sort-based, Held et al.)."""
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - 1.0
    idx = np.arange(1, y.size + 1)
    rho = np.nonzero(u - css / idx > 0)[0][-1]
    return np.maximum(y - css[rho] / (rho + 1.0), 0.0)


def _polish(B, c, p):
    """Solve the equality-constrained least squares on the support of p (KKT); None if infeasible."""
    s = np.nonzero(p > 0)[0]
    if s.size == 0:
        return None
    Bs = B[:, s]
    n = s.size
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = 2 * Bs.T @ Bs
    kkt[:n, n] = 1.0
    kkt[n, :n] = 1.0
    rhs = np.concatenate([2 * Bs.T @ c, [1.0]])
    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n]
    if np.any(sol < -1e-14):
        return None
    q = np.zeros_like(p)
    q[s] = np.maximum(sol, 0.0)
    return q / q.sum()


def radial_global_min(problem, d_interaction="inf", r_grid=None, *, r_max=None, n_grid=400, n_hermite=24,
                      tol=1e-12, max_iter=200_000) -> dict:
    """inf over radial measures supported on ``r_grid`` of the convex risk R (module docstring).

    R(p) = 1 + 2 sum_i p_i v(r_i) + sum_ij p_i p_j u(r_i, r_j) = ||B p - c||^2 (module docstring)
    is minimized over the probability simplex by accelerated projected gradient (FISTA, step
    1 / L with L = 2 ||B||_2^2), with the Frank-Wolfe duality gap

        fw_gap(p) = grad R(p) . p - min_i grad R(p)_i = 2 (int psi dp - min_i psi(r_i; p)) >= R(p) - R*_grid

    as the stopping rule (``tol``), then an active-set polish (KKT solve on the support).  At
    d = inf, R = (1/2)(1 - M_+)^2 + (1/2)(1 + M_-)^2: the squared distance (1/2-weighted) from
    (1, -1) to the convex hull of the curve r -> (m(tau_+ r), m(tau_- r)).

    ``r_grid`` default: ``n_grid`` points on [0, r_max] (``r_max`` as in :func:`default_r_max`).
    The grid minimum is an upper bound on inf R over all radial measures; ``lower_bound`` =
    risk - 2 gap_continuum, where gap_continuum is the optimality gap of the optimal grid measure
    against all r in [0, r_max] (:func:`radial_certificates`), is a lower bound up to that search.

    Returns dict: risk, weights, r_grid, support_r, support_w, fw_gap (duality gap on the grid),
    lower_bound, gap_continuum, iterations, d.
    """
    model = _model(problem, d_interaction, n_hermite)
    if r_grid is None:
        r_max = default_r_max(model) if r_max is None else float(r_max)
        check(n_grid >= 2, "n_grid", f"must be >= 2, got {n_grid}")
        r_grid = np.linspace(0.0, r_max, n_grid)
    r_grid = np.abs(np.asarray(r_grid, dtype=float))
    check(r_grid.ndim == 1 and r_grid.size >= 1, "r_grid", "need a non-empty 1-d grid of radii")
    F, _ = radial_features(model, r_grid)  # (2, K, n)
    # R(p) = R_# + 2 <V, F p> + <L, (F p)^2> = ||B p - c||^2 + R0 with B = sqrt(L) F, c = -V / sqrt(L)
    # (every active order has L > 0) and R0 = R_# - ||c||^2 (= 0 for the two-class task)
    Lw, Vw = np.asarray(model.u_weights), np.asarray(model.v_weights)
    B = (np.sqrt(Lw)[:, :, None] * F).reshape(-1, r_grid.size)
    c = (-Vw / np.sqrt(Lw)).ravel()
    R0 = float(model.r_sharp) - float(c @ c)

    def risk(p):
        e = B @ p - c
        return float(e @ e) + R0

    def grad(p):
        return 2.0 * B.T @ (B @ p - c)

    def fw(p):
        g = grad(p)
        return float(g @ p - g.min())

    L = 2.0 * max(np.linalg.norm(B, 2) ** 2, 1e-300)
    p = np.full(r_grid.size, 1.0 / r_grid.size)
    y, t = p.copy(), 1.0
    it = 0
    gap = fw(p)
    while it < max_iter and gap > tol:
        p_new = _project_simplex(y - grad(y) / L)
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        y = p_new + ((t - 1.0) / t_new) * (p_new - p)
        if risk(p_new) > risk(p):  # adaptive restart keeps FISTA monotone
            y, t_new = p_new.copy(), 1.0
        p, t = p_new, t_new
        it += 1
        if it % 50 == 0:
            gap = fw(p)
        if it % 500 == 0 and gap > tol:
            q = _polish(B, c, p)
            if q is not None and fw(q) < gap:
                p, y, t, gap = q, q.copy(), 1.0, fw(q)
    gap = fw(p)
    keep = p > 0
    cert = radial_certificates(model, r_grid[keep], p[keep], r_max=max(float(r_grid.max()), 1e-12))
    R = risk(p)
    gap_cont = max(cert["gap"], 0.5 * gap)
    return {
        "risk": R,
        "weights": p,
        "r_grid": r_grid,
        "support_r": r_grid[keep],
        "support_w": p[keep],
        "fw_gap": gap,
        "gap_continuum": gap_cont,
        "lower_bound": R - 2.0 * gap_cont,
        "iterations": it,
        "d": "inf" if math.isinf(model.d_interaction) else "finite",
    }
