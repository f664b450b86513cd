"""alpha-scaled flow vs linearized (kernel) dynamics on a teacher task (COLT 2019 Thm 4).

Setup (a demonstration of COLT 2019 Theorem 4; the paper has no experiments).  Teacher-student
regression: x ~ N(0, I_d), n training points, y = f(x) with f(x) = sum_k c_k tanh(<v_k, x>),
v_k ~ N(0, I_d/d), c_k = +-1/sqrt(K) (:func:`tanh_teacher`).  Student sigma_*(x; theta) =
a sigma(<w, x>) with the trained leaves of ``trained`` (a and w: Theorem 4(B)), rho_0: w ~
N(0, kappa^2/d I), a = +-1 (E a = 0, a independent of w: Theorem 4(C)), antithetic pairs so that
fhat = 0 at t = 0 (:func:`kernel_instance`).

Pieces, each computed on its own (one grid point each):

* :func:`linearized_reference`: u*_t = exp(-H t/n) y (eq. 17) with the finite-N kernel at
  initialization H(x, z; theta^0) (the exact alpha -> inf limit of THIS network), its kernel
  predictor on test points (App. H.7), and, where a closed form exists (erf, ReLU), u*_t with the
  population kernel H_rho0 (eq. 16; the N = inf, then alpha -> inf limit);
* :func:`alpha_flow_point`: the alpha-scaled gradient flow (eq. 13, App. H.2, rescaled time) from
  theta^0 at one alpha: residual on the data, test predictions, W2 coupling bound;
* :func:`compare_flows`: the gaps ||u^alpha_t - u*_t|| (L^2 of the empirical measure), on test
  points, against the population kernel, stacked over alpha (NaN after a diverged flow stopped);
* :func:`kernel_limit_fits`: log-log fits of the gap at t_fit against alpha (Theorem 4 bounds it by
  K t^2/alpha: exponent -1 is an upper bound; with a-symmetric rho_0 and smooth sigma the first-order
  kernel drift cancels and the measured exponent is about -2), of the gap against t at the largest
  alpha (bound: t^2) and of the W2 displacement against alpha (~ 1/alpha in the lazy regime).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..errors import ConfigError, DivergenceError
from .closed_form import gaussian_kernel
from ..numerics.pytree import to_real
from ..solvers import SaveAt, kept, solve
from .dynamics import AlphaFlow, antithetic_init
from .linearized import KernelFlow
from .ntk import empirical_kernel


def tanh_teacher(key, d: int, k: int):
    """f(x) = sum_k c_k tanh(<v_k, x>), v_k ~ N(0, I/d), c_k = +-1/sqrt(k) (so |f| <= sqrt(k))."""
    kv, kc = jax.random.split(key)
    v = jax.random.normal(kv, (k, d)) / math.sqrt(d)
    c = jnp.where(jax.random.bernoulli(kc, 0.5, (k,)), 1.0, -1.0) / math.sqrt(k)
    return lambda x: jnp.tanh(x @ v.T) @ c


def teacher_data(key, d: int, n_train: int, n_test: int, teacher_units: int) -> dict:
    """Gaussian inputs and teacher labels: ``x`` (n_train, d), ``y``, ``x_test``, ``y_test``."""
    k_teacher, k_x, k_test = jax.random.split(key, 3)
    f = tanh_teacher(k_teacher, d, teacher_units)
    x, xt = jax.random.normal(k_x, (n_train, d)), jax.random.normal(k_test, (n_test, d))
    return {"x": x, "y": f(x), "x_test": xt, "y_test": f(xt)}


def kernel_instance(activation: str, trained, *, kappa: float, d: int, n_neurons: int, n_train: int, n_test: int,
                    teacher_units: int, data_key, init_key) -> tuple:
    """(unit, init, data, theta0): the student a sigma(<w, x>), rho_0 with a = +-1, the teacher data
    of ``data_key`` and N antithetic neurons of ``init_key`` (the same for every alpha)."""
    from ..problem import GaussianInit, ProjectionUnit

    unit = ProjectionUnit(activation, trained=tuple(trained))
    init = GaussianInit(kappa=kappa, a_mean=1.0, symmetric_a=True)
    data = teacher_data(data_key, d, n_train, n_test, teacher_units)
    return unit, init, data, antithetic_init(unit, init, init_key, int(n_neurons), int(d))


def _l2(u, axis=-1):
    return np.sqrt(np.mean(np.asarray(u) ** 2, axis=axis))


def linearized_reference(unit, init, theta0, data: dict, times) -> xr.Dataset:
    """u*_t (time, train) and the kernel predictor (time, test) of the kernel at initialization;
    ``u_star_pop`` (time, train) with the closed-form population kernel where one exists."""
    times = np.asarray(times, float)
    x, y, xt = data["x"], np.asarray(data["y"]), data["x_test"]
    flow = KernelFlow(np.asarray(empirical_kernel(unit, theta0, x)))
    h = np.asarray(empirical_kernel(unit, theta0, xt, x))
    ds = xr.Dataset({"u_star": (("time", "train"), flow.residual(y, times)),
                     "kernel_pred_test": (("time", "test"), flow.predict(h, y, times))},
                    coords={"time": times}, attrs={"cond_H": flow.condition_number, "result": "successful"})
    try:
        Hp = np.asarray(gaussian_kernel(unit, init, x))
        ds["u_star_pop"] = (("time", "train"), KernelFlow(Hp).residual(y, times))
    except ConfigError:  # no closed form for this activation
        pass
    return ds


def alpha_flow_point(unit, theta0, data: dict, alpha: float, times, *, method: str = "rk4", dt: float = 0.01,
                     progress: bool = False) -> xr.Dataset:
    """The alpha-scaled flow at one alpha: ``residual`` (time, train), ``pred_test`` (time, test),
    ``w2_bound`` (time,).  A diverged flow keeps its saves (``attrs["result"] = "diverged"``)."""
    times = np.asarray(times, float)
    try:
        m = AlphaFlow(x=jnp.asarray(data["x"]), y=jnp.asarray(data["y"]), theta0=theta0, alpha=to_real("alpha", alpha),
                      x_test=jnp.asarray(data["x_test"]), solver=method, dt=dt)
        r = kept(solve(unit, m, SaveAt(times, ("residual", "pred_test", "w2_bound")), progress=progress, throw=False))
        res, pred, w2, saved, diverged = r.residual, r.pred_test, r.w2_bound, r.times, r.result == "diverged"
    except DivergenceError:
        n, m = data["x"].shape[0], data["x_test"].shape[0]
        res, pred, w2, saved, diverged = np.zeros((0, n)), np.zeros((0, m)), np.zeros(0), times[:0], True
    ds = xr.Dataset({"residual": (("time", "train"), np.asarray(res)),
                     "pred_test": (("time", "test"), np.asarray(pred)), "w2_bound": (("time",), np.asarray(w2))},
                    coords={"time": np.asarray(saved, float)},
                    attrs={"alpha": float(alpha), "result": "diverged" if diverged else "successful"})
    if diverged:
        ds.attrs["stopped_at"] = float(saved[-1]) if len(saved) else float(times[0])
    return ds


def _pad(a, T):
    a = np.asarray(a, float)
    out = np.full((T,) + a.shape[1:], np.nan)
    out[:a.shape[0]] = a
    return out


def compare_flows(reference: xr.Dataset, flows: list, alphas) -> xr.Dataset:
    """Stack the flows (one per alpha, NaN-padded after a divergence) against the reference:
    ``gap`` = ||u^alpha_t - u*_t||, ``gap_test`` = ||fhat^alpha_t - kernel predictor|| on test points,
    ``risk_alpha`` = ||u^alpha_t||^2, ``u_star_sq``, and with a population kernel ``u_star_population``
    = ||u*_pop_t|| and ``gap_population`` (norms: L^2 of the empirical measure)."""
    times = reference.time.values
    T = times.size
    res = np.stack([_pad(f.residual.values, T) for f in flows])  # (A, T, n)
    pred = np.stack([_pad(f.pred_test.values, T) for f in flows])
    ustar, fstar = reference.u_star.values, reference.kernel_pred_test.values
    ds = xr.Dataset(
        {"residual": (("alpha", "time", "train"), res), "u_star": (("time", "train"), ustar),
         "pred_test": (("alpha", "time", "test"), pred), "kernel_pred_test": (("time", "test"), fstar),
         "gap": (("alpha", "time"), _l2(res - ustar[None])), "gap_test": (("alpha", "time"), _l2(pred - fstar[None])),
         "risk_alpha": (("alpha", "time"), _l2(res) ** 2), "u_star_sq": (("time",), _l2(ustar) ** 2),
         "w2_bound": (("alpha", "time"), np.stack([_pad(f.w2_bound.values, T) for f in flows]))},
        coords={"alpha": np.asarray(alphas, float), "time": times}, attrs={"cond_H": reference.attrs["cond_H"]})
    if "u_star_pop" in reference:
        up = reference.u_star_pop.values
        ds["u_star_population"] = (("time",), _l2(up))
        ds["gap_population"] = (("alpha", "time"), _l2(res - up[None]))
    return ds


def kernel_limit_fits(ds: xr.Dataset, t_fit: float, alpha_fit_min: float) -> dict:
    """Fits and tables of one student (see the module note); a fit with < 3 usable points is None."""
    from ..analysis.gap_points import fit_or_none

    times, alphas = ds.time.values, ds.alpha.values
    i = int(np.argmin(np.abs(times - t_fit)))
    m = alphas >= alpha_fit_min
    gap, w2 = ds.gap.values, ds.w2_bound.values
    late = (times > 0) & (times >= times[-1] / 2)  # growth in t at the largest alpha (bound: t^2)
    table = lambda v: {f"{a:g}": float(g) for a, g in zip(alphas, v)}  # noqa: E731
    out = {"alpha_exponent": fit_or_none(alphas[m], gap[m, i]),
           "t_exponent_at_largest_alpha": fit_or_none(times[late], gap[-1, late]),
           "w2_alpha_exponent": fit_or_none(alphas[m], w2[m, -1]),
           "gap_at_t_fit": table(gap[:, i]), "w2_at_t_max": table(w2[:, -1]),
           "test_gap_at_t_fit": table(ds.gap_test.values[:, i]),
           "risk_alpha_at_t_fit_largest_alpha": float(ds.risk_alpha.values[-1, i]),
           "u_star_sq_at_t_fit": float(ds.u_star_sq.values[i]), "cond_H": float(ds.attrs["cond_H"])}
    if "gap_population" in ds:
        out["population_gap_at_t_fit"] = table(ds.gap_population.values[:, i])
    return out
