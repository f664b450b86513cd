"""Activations sigma(t) with derivatives and the Gaussian expectations mfnn needs.

Every activation provides, for G ~ N(0,1), scale s >= 0 and shift b,

* ``hermite_coeffs(s, b, K)``: chat_k(s, b) = E[sigma(s G + b) h_k(G)], k < K, with h_k the
  orthonormal Hermite polynomials.  chat_0 = E sigma(sG + b) is the m(s) of the PNAS notes.
* ``second_moment(s, b)``: E[sigma(sG + b)^2].

Piecewise-linear activations (the PNAS ramp, ReLU, any user shape) have closed forms: by Stein's
lemma E[sigma(sG+b) He_k(G)] = s E[sigma'(sG+b) He_{k-1}(G)], sigma' is piecewise constant and
int_a^b He_{k-1} phi = He_{k-2}(a) phi(a) - He_{k-2}(b) phi(b).  Smooth activations use
composite Gauss-Legendre quadrature against the Gaussian density (``_smooth_rule``).  Derivatives are attached with ``jax.custom_jvp`` so autodiff of any
unit uses the documented sigma'.
"""

from __future__ import annotations

import math
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _erf

from ..errors import check
from ..numerics.hermite import hermite_functions, normal_cdf, normal_pdf
from ..numerics.pytree import Module, is_tracer, real, to_real

_CLIP = 38.0  # |breakpoint / s| beyond this: phi underflows to 0 and Phi to 0/1 in float64
# Smooth activations: composite Gauss-Legendre for E[f(G)] on [-12, 12] (Gaussian mass outside
# ~4e-33), 480 panels of width 0.05 with 8 nodes each.  sigma(sG + b) varies on the scale 1/s and
# tanh/sigmoid/erf are analytic within ~pi/(2s) of the real axis, so panels of width 0.05 keep
# the error below 1e-12 up to s ~ 30; a plain Gauss-Hermite rule (160 nodes) lost 3e-3 at s = 8.
_QUAD_L, _QUAD_PANELS, _QUAD_PTS = 12.0, 480, 8


def _smooth_rule():
    x, w = np.polynomial.legendre.leggauss(_QUAD_PTS)
    edges = np.linspace(-_QUAD_L, _QUAD_L, _QUAD_PANELS + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    g = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    wg = (half[:, None] * w[None, :]).ravel() * np.exp(-0.5 * g * g) / math.sqrt(2 * math.pi)
    return g, wg


class Activation(Module):
    """Base class: subclasses define ``value`` and ``deriv``; Gaussian moments default to quadrature."""

    def value(self, t):  # pragma: no cover - interface
        raise NotImplementedError

    def deriv(self, t):  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, t):
        return _with_derivative(self, t)

    # Gaussian expectations by Gauss-Hermite quadrature (exact enough for smooth sigma).
    def _quad(self, fn, s, b, n_terms):
        g, w = _smooth_rule()
        s, b = jnp.broadcast_arrays(jnp.asarray(s, dtype=float), jnp.asarray(b, dtype=float))
        vals = fn(s[..., None] * g + b[..., None])  # (..., Q)
        h = hermite_functions(jnp.asarray(g), n_terms)  # (K, Q)
        return jnp.einsum("...q,kq->k...", vals * w, h)

    def hermite_coeffs(self, s, b, n_terms: int):
        """chat_k(s, b) = E[sigma(sG + b) h_k(G)], shape (n_terms,) + broadcast(s, b).shape."""
        return self._quad(self.value, s, b, n_terms)

    def deriv_coeffs(self, s, b, n_terms: int):
        """D_k(s, b) = E[sigma'(sG + b) h_k(G)] = d chat_k / db."""
        return self._quad(self.deriv, s, b, n_terms)

    def second_moment(self, s, b):
        g, w = _smooth_rule()
        s, b = jnp.asarray(s), jnp.asarray(b)
        vals = self.value(s[..., None] * g + b[..., None])
        return jnp.sum(vals * vals * w, axis=-1)

    def coeffs_with_grad(self, s, b, n_terms: int):
        """(chat_k, d chat_k/ds, d chat_k/db) for k < n_terms.

        d/ds E[sigma(sG+b) h_k] = E[sigma' G h_k] = sqrt(k+1) D_{k+1} + sqrt(k) D_{k-1}
        (G h_k = sqrt(k+1) h_{k+1} + sqrt(k) h_{k-1}); d/db chat_k = D_k.
        """
        c = self.hermite_coeffs(s, b, n_terms)
        D = self.deriv_coeffs(s, b, n_terms + 1)
        return c, _ds_from_D(D, n_terms), D[:n_terms]


def _float_dtype(t):
    return t.dtype if jnp.issubdtype(t.dtype, jnp.floating) else None


def _ds_from_D(D, n_terms):
    """d chat_k/ds = sqrt(k+1) D_{k+1} + sqrt(k) D_{k-1}, from D_0..D_{n_terms}."""
    k = jnp.arange(n_terms, dtype=float).reshape((-1,) + (1,) * (D.ndim - 1))
    lower = jnp.concatenate([jnp.zeros_like(D[:1]), D[: n_terms - 1]])
    return jnp.sqrt(k + 1) * D[1 : n_terms + 1] + jnp.sqrt(k) * lower


def _with_derivative(act: Activation, t):
    @jax.custom_jvp
    def f(t):
        return act.value(t)

    @f.defjvp
    def f_jvp(primals, tangents):
        (t,), (dt,) = primals, tangents
        return act.value(t), act.deriv(t) * dt

    return f(t)


class PiecewiseLinear(Activation):
    """Continuous piecewise-linear sigma through (breakpoints[j], values[j]), linear tails.

    Tail slopes default to 0 (bounded sigma, as in the PNAS ramp); ReLU is breakpoints (0,),
    values (0,), right_slope 1.  Non-monotone shapes (PNAS Fig. 4) are allowed.  Breakpoints,
    values and slopes are array leaves (traced in compiled programs); their number is structure.
    """

    breakpoints: np.ndarray = real("activation.breakpoints", shape="vector")
    values: np.ndarray = real("activation.values", shape="vector")
    left_slope: np.ndarray = real("activation.left_slope", 0.0)
    right_slope: np.ndarray = real("activation.right_slope", 0.0)
    name: str = eqx.field(static=True, default="piecewise_linear")

    def __check_init__(self):
        bp, vs = self.breakpoints, self.values
        if is_tracer(bp):
            return
        check(bp.ndim == 1 and len(bp) >= 1, "activation.breakpoints", "need at least one breakpoint")
        check(vs.shape == bp.shape, "activation.values", "need one value per breakpoint")
        check(bool(np.all(np.diff(bp) > 0)), "activation.breakpoints", "must be strictly increasing")

    @classmethod
    def ramp(cls, t1=0.5, t2=1.5, s1=-2.5, s2=7.5):
        """The PNAS 2018 ramp: s1 for t <= t1, linear to s2 at t2, s2 beyond (defaults: slope 10)."""
        for nm, v in (("t1", t1), ("t2", t2), ("s1", s1), ("s2", s2)):
            to_real(f"activation.{nm}", v)
        check(t2 > t1, "activation.t2", f"need t2 > t1, got t1={t1}, t2={t2}")
        return cls((t1, t2), (s1, s2), name="ramp")

    # Pieces j = 0..P with P = len(breakpoints): piece j is (lo_j, hi_j) with lo_0 = -inf and
    # hi_P = +inf, sigma(t) = anchor_v_j + slope_j (t - anchor_t_j) on it.  The infinite ends are
    # structural (first and last piece), so limits use finite stand-ins there (no inf in autodiff).
    def _pieces(self, dtype=None):
        """Piece arrays in ``dtype`` (the leaves are float64; a float32 input computes in float32)."""
        cast = lambda v: jnp.asarray(v, dtype) if dtype is not None else jnp.asarray(v)  # noqa: E731
        bp, vs = cast(self.breakpoints), cast(self.values)
        inner = (vs[1:] - vs[:-1]) / (bp[1:] - bp[:-1])
        slope = jnp.concatenate([jnp.reshape(cast(self.left_slope), (1,)), inner,
                                 jnp.reshape(cast(self.right_slope), (1,))])
        lo = jnp.concatenate([bp[:1], bp])  # lo_0 is a stand-in for -inf (masked)
        hi = jnp.concatenate([bp, bp[-1:]])  # hi_P is a stand-in for +inf (masked)
        anchor_t = jnp.concatenate([bp[:1], bp])
        anchor_v = jnp.concatenate([vs[:1], vs])
        return lo, hi, slope, anchor_t, anchor_v

    def _ends(self, shape):
        """Static masks of the infinite ends: lo of the first piece, hi of the last one."""
        P = len(self.breakpoints) + 1
        lo_inf = np.zeros(P, bool)
        lo_inf[0] = True
        hi_inf = np.zeros(P, bool)
        hi_inf[-1] = True
        r = lambda m: m.reshape((P,) + (1,) * len(shape))  # noqa: E731
        return r(lo_inf), r(hi_inf)

    # value and deriv are on the SGD hot path: unrolled over the (static) pieces with scalar
    # slopes, the shape of the computation the blocked engine was tuned on (no (..., P) arrays)
    def value(self, t):
        t = jnp.asarray(t)
        lo, hi, slope, _, anchor_v = self._pieces(_float_dtype(t))
        n = slope.shape[0]
        # first piece: v_0 + left (t - bp_0) for t < bp_0; each later piece adds its slope over
        # the part of (lo, hi) below t (the last piece's hi is +inf)
        out = anchor_v[0] + slope[0] * jnp.minimum(t - lo[0], 0.0)
        for j in range(1, n):
            part = jnp.maximum(t - lo[j], 0.0) if j == n - 1 else jnp.clip(t, lo[j], hi[j]) - lo[j]
            out = out + slope[j] * part
        return out

    def deriv(self, t):
        t = jnp.asarray(t)
        lo, hi, slope, _, _ = self._pieces(_float_dtype(t))
        n = slope.shape[0]
        out = jnp.zeros_like(t)
        for j in range(n):
            inside = (t <= hi[j]) if j == 0 else (t > lo[j]) if j == n - 1 else (t > lo[j]) & (t <= hi[j])
            out = out + jnp.where(inside, slope[j], 0.0)
        return out

    def _limits(self, s, b):
        """Standardized limits (lo - b)/s, (hi - b)/s of every piece, clipped, shape (P, ...)."""
        lo, hi, _, _, _ = self._pieces(s.dtype)
        shape = (-1,) + (1,) * s.ndim
        lo_inf, hi_inf = self._ends(s.shape)
        s_safe = jnp.maximum(s, 1e-300)[None]
        a = jnp.clip((lo.reshape(shape) - b[None]) / s_safe, -_CLIP, _CLIP)
        z = jnp.clip((hi.reshape(shape) - b[None]) / s_safe, -_CLIP, _CLIP)
        return jnp.where(lo_inf, -_CLIP, a), jnp.where(hi_inf, _CLIP, z)

    def _piece_arrays(self, s, b):
        """Stacked limits (P, ...) and per-piece slope / intercept arrays."""
        a, z = self._limits(s, b)
        _, _, slope, anchor_t, anchor_v = self._pieces(s.dtype)
        shape = (-1,) + (1,) * s.ndim
        slope = slope.reshape(shape)
        # on a piece sigma(sG + b) = c0 + c1 G with c0 = v0 + slope (b - t0), c1 = slope s
        c0 = anchor_v.reshape(shape) + slope * (b[None] - anchor_t.reshape(shape))
        return a, z, slope, c0

    def deriv_coeffs(self, s, b, n_terms: int):
        """D_k = sum_pieces slope * int_a^z h_k phi, with int_a^z h_k phi = (h_{k-1} phi)(a) - (h_{k-1} phi)(z) over sqrt(k)."""
        s, b = jnp.broadcast_arrays(jnp.asarray(s, dtype=float), jnp.asarray(b, dtype=float))
        a, z, slope, _ = self._piece_arrays(s, b)
        d0 = jnp.sum(slope * (normal_cdf(z) - normal_cdf(a)), axis=0)
        if n_terms == 1:
            return d0[None]
        ends = jnp.stack([a, z])  # (2, P, ...)
        hp = hermite_functions(ends, n_terms - 1) * normal_pdf(ends)[None]  # (K-1, 2, P, ...)
        diff = jnp.sum(slope[None] * (hp[:, 0] - hp[:, 1]), axis=1)  # (K-1, ...)
        k = jnp.sqrt(jnp.arange(1, n_terms, dtype=float)).reshape((-1,) + (1,) * s.ndim)
        return jnp.concatenate([d0[None], diff / k])

    def _mean(self, s, b):
        """chat_0 = E sigma(sG + b), summed over pieces with truncated normal moments."""
        a, z, slope, c0 = self._piece_arrays(s, b)
        m0 = normal_cdf(z) - normal_cdf(a)
        m1 = normal_pdf(a) - normal_pdf(z)
        return jnp.sum(c0 * m0 + slope * s[None] * m1, axis=0)

    def _coeffs_from_D(self, s, b, D, n_terms):
        """chat_0 piecewise; chat_k = s D_{k-1} / sqrt(k) for k >= 1 (Stein)."""
        c_0 = self._mean(s, b)
        k = jnp.sqrt(jnp.arange(1, n_terms, dtype=float)).reshape((-1,) + (1,) * s.ndim)
        return jnp.concatenate([c_0[None], s[None] * D[: n_terms - 1] / k])

    def hermite_coeffs(self, s, b, n_terms: int):
        s, b = jnp.broadcast_arrays(jnp.asarray(s, dtype=float), jnp.asarray(b, dtype=float))
        if n_terms == 1:
            return self._mean(s, b)[None]
        return self._coeffs_from_D(s, b, self.deriv_coeffs(s, b, n_terms - 1), n_terms)

    def coeffs_with_grad(self, s, b, n_terms: int):
        s, b = jnp.broadcast_arrays(jnp.asarray(s, dtype=float), jnp.asarray(b, dtype=float))
        D = self.deriv_coeffs(s, b, n_terms + 1)
        return self._coeffs_from_D(s, b, D, n_terms), _ds_from_D(D, n_terms), D[:n_terms]

    def second_moment(self, s, b):
        s, b = jnp.broadcast_arrays(jnp.asarray(s, dtype=float), jnp.asarray(b, dtype=float))
        a, z, slope, c0 = self._piece_arrays(s, b)
        pa, pz = normal_pdf(a), normal_pdf(z)
        m0 = normal_cdf(z) - normal_cdf(a)
        m1 = pa - pz
        m2 = m0 + a * pa - z * pz  # E[G^2; a < G < z]
        c1 = slope * s[None]  # sigma = c0 + c1 G on the piece
        return jnp.sum(c0 * c0 * m0 + 2 * c0 * c1 * m1 + c1 * c1 * m2, axis=0)


def ramp(t1=0.5, t2=1.5, s1=-2.5, s2=7.5) -> PiecewiseLinear:
    """The PNAS 2018 piecewise-linear activation sigma(t1, t2, s1, s2)."""
    return PiecewiseLinear.ramp(t1, t2, s1, s2)


def relu() -> PiecewiseLinear:
    """The ReLU max(0, t) as a ``PiecewiseLinear`` activation (closed-form Gaussian moments; COLT 2019 sec. 4)."""
    return PiecewiseLinear((0.0,), (0.0,), 0.0, 1.0, name="relu")


class Tanh(Activation):
    """sigma(t) = tanh(t) (Gaussian moments by quadrature)."""

    name: str = eqx.field(static=True, default="tanh")

    def value(self, t):
        return jnp.tanh(t)

    def deriv(self, t):
        return 1.0 - jnp.tanh(t) ** 2


class Sigmoid(Activation):
    """The logistic sigma(t) = 1 / (1 + e^-t) (Gaussian moments by quadrature)."""

    name: str = eqx.field(static=True, default="sigmoid")

    def value(self, t):
        return jax.nn.sigmoid(t)

    def deriv(self, t):
        sg = jax.nn.sigmoid(t)
        return sg * (1.0 - sg)


class Erf(Activation):
    """sigma(t) = erf(t) (the closed-form erf kernel of ``mfnn.kernel.erf_kernel`` uses it)."""

    name: str = eqx.field(static=True, default="erf")

    def value(self, t):
        return _erf(t)

    def deriv(self, t):
        return 2.0 / math.sqrt(math.pi) * jnp.exp(-t * t)


def get_activation(spec) -> Activation:
    """Activation from a name ('ramp', 'relu', 'tanh', 'sigmoid', 'erf') or an instance."""
    if isinstance(spec, Activation):
        return spec
    table = {"ramp": ramp, "relu": relu, "tanh": Tanh, "sigmoid": Sigmoid, "erf": Erf}
    from ..errors import ConfigError

    if spec not in table:
        raise ConfigError("activation", f"unknown activation {spec!r}; choose from {sorted(table)}")
    return table[spec]()
