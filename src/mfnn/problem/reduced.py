"""Symmetry-reduced population terms: ONE feature model gives v, u, psi, grad psi and R.

``ANISOTROPIC_COORDS`` = ("a", "b", "r1", "r2") names the anisotropic coordinates.

Setting: a two-class Gaussian mixture (y = +1 / -1 with probability 1/2 each, class scales
tau_+ = 1 + Delta, tau_- = 1 - Delta) and the projection unit a sigma(<w, x> + b) (PNAS 2018
eq. 1).  When the task and the initial law are invariant under a group G acting on w (all
rotations for the isotropic task; O(s0) x O(d - s0) for the anisotropic task), so is rho_t
(the DD, PNAS 2018 eq. 7, commutes with G), and the population terms V, U of PNAS 2018 eqs. 3-4,
averaged over G, are functions of the orbit invariants thetabar (r = ||w|| for the isotropic task;
(a, b, r1, r2) for the anisotropic one).  Mehler's formula turns the averaged pair term into a
finite sum of products of FEATURES phi_{c,f}(thetabar) (c the class, f a feature index: a Hermite
order k, or a pair (k, j) of an order and a binomial split):

    v(thetabar)              = sum_{c,f} V_{c,f} phi_{c,f}(thetabar)                  (one-body)
    u(thetabar, thetabar')   = sum_{c,f} L_{c,f} phi_{c,f}(thetabar) phi_{c,f}(thetabar')  (pair)

with V_{c,0} = -pi_c y_c (v = -E[y sigma]) and L_{c,f} = pi_c x (an angular moment E[c^k]).  This is
the "one-body + pair potential" structure of jax-md's energies, with a rank-F diagonal pair term, so
that every quantity depends on a measure rhobar only through its feature moments
S = int phi drhobar:

    psi(thetabar; rhobar)   = < V + L o S, phi(thetabar) >                  (PNAS 2018 eq. 7's Psi)
    grad psi(thetabar; rho) = < V + L o S, grad phi(thetabar) >
    R(rhobar)               = R_# + 2 < V, S > + < L, S o S >             (PNAS 2018 eq. 4)

``ReducedModel`` implements these once; a subclass only says what phi and grad phi are:

* ``RadialModel`` (isotropic task, only w trained, a and b fixed): phi_{c,k}(r) = a chat_k(tau_c r, b)
  (``Activation.hermite_coeffs``) for the orders k with E[c^k] > 0 (the cosine of two independent
  uniform directions on S^{d-1}: ``sphere_cosine_moments``, the exact finite-d angular average;
  d = inf keeps k = 0), L_{c,k} = E[c^k] / 2.
* ``AnisotropicModel`` (anisotropic task, theta = (a, b, r1, r2)): with S_c^2 = tau_c^2 r1^2 + r2^2,
  p = tau_c r1 / S_c, q = r2 / S_c, phi_{c,(k,j)} = a chat_k(S_c, b) p^j q^(k-j) and
  L_{c,(k,j)} = binom(k, j) E[c1^j] E[c2^(k-j)] / 2 (c1, c2 cosines on S^{s0-1}, S^{d-s0-1}; odd
  j or k - j vanish); d = inf keeps (k, j) = (0, 0).

The radial DD and its certificates, the noisy radial grid and its Gibbs measure, and the
anisotropic DD all evaluate psi, psi' and R through these methods.  Models are equinox modules:
the numbers (tau, a, b, V, L, R_#) are array leaves, traced when a model is passed to a compiled
program; only the feature index sets are static.  Like every problem module they compare and
hash by value, so ``jax.jit(model.risk)`` and caches keyed on a model work.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import comb

from ..errors import ConfigError, check
from ..numerics.hermite import sphere_cosine_moments
from ..numerics.pytree import Module
from .anisotropic import AnisotropicGaussians
from .tasks import IsotropicGaussians
from .units import ProjectionUnit

__all__ = ["ReducedModel", "RadialModel", "AnisotropicModel", "ANISOTROPIC_COORDS", "interaction_dimension"]

ANISOTROPIC_COORDS = ("a", "b", "r1", "r2")
_LABELS = (1.0, -1.0)  # y of the tau_+ and tau_- classes
_PROBS = (0.5, 0.5)


def _leaf(x):
    """A number (or a tuple/array of numbers) as a float64 leaf; tracers pass through."""
    if any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(x)):
        return jnp.asarray(x)
    return np.asarray(x, dtype=np.float64)


def interaction_dimension(d, d_interaction) -> float:
    """The dimension of the angular average: the task's d ("finite") or infinity ("inf")."""
    if d_interaction in ("finite", None):
        return float(d)
    if d_interaction in ("inf", math.inf, "infinity"):
        return math.inf
    raise ConfigError("d_interaction", f"use 'finite' or 'inf', got {d_interaction!r}")


def _weights_two_class(pair: np.ndarray, n_features: int):
    """(V, L) of shape (2, F) for the two-class task: V_{c,0} = -pi_c y_c, L_{c,f} = pi_c pair_f."""
    V = np.zeros((2, n_features))
    V[:, 0] = [-p * y for p, y in zip(_PROBS, _LABELS)]
    L = np.stack([p * np.asarray(pair, dtype=float) for p in _PROBS])
    return V, L


class ReducedModel(Module):
    """psi, grad psi, v, u and R from features phi (module docstring); subclasses define phi.

    ``features(theta)`` has shape (C, F) + batch; ``features_and_grads(theta)`` also returns the
    partial derivatives of phi with the pytree structure of ``theta`` (each leaf (C, F) + batch).
    Particle batches are 1-d (M particles); measures are equal-weight unless ``weights`` are given
    (then S = sum_j weights_j phi(theta_j), e.g. cell masses on a grid).
    """

    v_weights: np.ndarray  # (C, F): v = <V, phi>
    u_weights: np.ndarray  # (C, F): u = sum L phi phi'
    r_sharp: np.ndarray  # R_# = E y^2

    def features(self, theta):  # pragma: no cover - interface
        raise NotImplementedError

    def features_and_grads(self, theta):  # pragma: no cover - interface
        raise NotImplementedError

    # --- in feature space -----------------------------------------------------------------
    def moments_from_features(self, phi, weights=None):
        """S = int phi drhobar: the mean over particles, or sum_j weights_j phi_j; shape (C, F)."""
        if weights is None:
            return jnp.mean(phi, axis=-1)
        return phi @ weights

    def field(self, S):
        """d psi / d phi = V + L o S: the coefficients of psi(.; rhobar) on the features."""
        return self.v_weights + self.u_weights * S

    def psi_from_features(self, phi, S):
        """psi(theta; rhobar) = <V + L o S, phi(theta)> at precomputed features."""
        return jnp.einsum("cf,cf...->...", self.field(S), phi)

    def risk_from_moments(self, S):
        """R(rhobar) = R_# + 2 <V, S> + <L, S o S>."""
        return self.r_sharp + 2.0 * jnp.sum(self.v_weights * S) + jnp.sum(self.u_weights * S * S)

    # --- in particle space ----------------------------------------------------------------
    def moments(self, theta, weights=None):
        """Feature moments S of the measure of the particles ``theta`` (equal weights by default)."""
        return self.moments_from_features(self.features(theta), weights)

    def v(self, theta):
        """v(theta) = -E[y sigma_*] averaged over the group, for each particle."""
        return jnp.einsum("cf,cf...->...", self.v_weights, self.features(theta))

    def u(self, theta1, theta2):
        """u(theta, theta') elementwise over two equal-size particle batches."""
        return jnp.einsum("cf,cf...,cf...->...", self.u_weights, self.features(theta1), self.features(theta2))

    def psi(self, theta, S):
        """psi(theta; rhobar) for each particle of ``theta``, given the moments S of rhobar."""
        return self.psi_from_features(self.features(theta), S)

    def grad_psi(self, theta, S=None):
        """(grad psi(theta_i; rhobar), S): rhobar has moments S, or (S=None) is the particles' own measure.

        One evaluation of the features and their gradients serves both S and the gradient.
        """
        phi, dphi = self.features_and_grads(theta)
        if S is None:
            S = self.moments_from_features(phi)
        G = self.field(S)
        return jax.tree_util.tree_map(lambda d: jnp.einsum("cf,cf...->...", G, d), dphi), S

    def risk(self, theta, weights=None):
        """R(rhobar) for the measure of the particles ``theta`` (equal weights by default)."""
        return self.risk_from_moments(self.moments(theta, weights))


class RadialModel(ReducedModel):
    """Isotropic task, unit sigma(<w, x> + b) with only w trained: features of r = ||w||.

    phi_{c,k}(r) = a chat_k(tau_c r, b) for the orders k with E[c^k] > 0 (``orders``).
    """

    activation: object
    taus: np.ndarray  # (2,)
    a: np.ndarray
    b: np.ndarray
    orders: tuple = eqx.field(static=True)
    d_interaction: float = eqx.field(static=True)  # d of the angular average (inf: k = 0 only)

    @classmethod
    def from_problem(cls, problem, d_interaction="finite", n_hermite: int = 24, *,
                     validate: bool = True) -> "RadialModel":
        """The model of an isotropic ``problem``.  ``validate=False`` skips the checks on the
        problem's numbers (for a problem whose leaves are traced inside a compiled program)."""
        unit, task = problem.unit, problem.task
        if not isinstance(task, IsotropicGaussians):
            raise ConfigError("task", "the radial DD needs the isotropic Gaussian task")
        if not isinstance(unit, ProjectionUnit) or tuple(unit.trained) != ("w",):
            raise ConfigError("unit", "the radial DD needs sigma(<w,x>+b) with only w trained")
        if validate and (problem.init.a_std or problem.init.b_std or problem.init.symmetric_a):
            raise ConfigError("init", "the radial DD needs deterministic a and b at initialization")
        d_eff = interaction_dimension(task.d, d_interaction)
        check(isinstance(n_hermite, (int, np.integer)) and n_hermite >= 1, "n_hermite",
              f"must be an integer >= 1, got {n_hermite!r}")
        return cls.build(unit.activation, task.taus, problem.init.a_mean * problem.alpha, problem.init.b_mean,
                         d_eff, int(n_hermite))

    @classmethod
    def build(cls, activation, taus, a, b, d_interaction: float, n_hermite: int) -> "RadialModel":
        """The model for explicit (activation, (tau_+, tau_-), a, b) and angular dimension."""
        mom = sphere_cosine_moments(d_interaction, n_hermite if math.isfinite(d_interaction) else 1)
        orders = tuple(int(k) for k in np.nonzero(mom > 0)[0])
        V, L = _weights_two_class(mom[list(orders)], len(orders))
        return cls(v_weights=V, u_weights=L, r_sharp=np.asarray(1.0), activation=activation, taus=_leaf(taus),
                   a=_leaf(a), b=_leaf(b), orders=orders, d_interaction=float(d_interaction))

    @property
    def n_terms(self) -> int:
        """Hermite coefficients evaluated per class: chat_0 .. chat_{K-1}, K = max order + 1."""
        return self.orders[-1] + 1

    @property
    def angular_weights(self) -> np.ndarray:
        """E[c^k] / 2 of the active orders (the pair weights L of one class)."""
        return self.u_weights[0]

    def features(self, r):
        idx = np.asarray(self.orders)
        return jnp.stack([self.a * self.activation.hermite_coeffs(self.taus[c] * r, self.b, self.n_terms)[idx]
                          for c in range(2)])

    def features_and_grads(self, r):
        idx = np.asarray(self.orders)
        F, dF = [], []
        for c in range(2):
            tau = self.taus[c]
            coef, ds, _ = self.activation.coeffs_with_grad(tau * r, self.b, self.n_terms)
            F.append(self.a * coef[idx])
            dF.append(self.a * tau * ds[idx])
        return jnp.stack(F), jnp.stack(dF)

    def dpsi(self, r, S):
        """psi'(r; rhobar) given the moments S of rhobar."""
        return self.grad_psi(r, S)[0]

    def velocity(self, r):
        """-psi'(r; rhobar^M) for the particles' own measure (without the 2 xi factor)."""
        return -self.grad_psi(r)[0]


def _block_moments(dim: int, n_terms: int) -> np.ndarray:
    """E[c^k] for the cosine on S^{dim-1}; dim = 0 (empty block, r = 0) gives (1, 0, 0, ...)."""
    if dim == 0:
        out = np.zeros(n_terms)
        out[0] = 1.0
        return out
    return sphere_cosine_moments(dim, n_terms)


class AnisotropicModel(ReducedModel):
    """Anisotropic task, unit a sigma(<w, x> + b): features of theta = (a, b, r1, r2) (dicts of (M,))."""

    activation: object
    taus: np.ndarray  # (2,)
    ks: tuple = eqx.field(static=True)  # Hermite order of each feature
    js: tuple = eqx.field(static=True)  # power of p (block 1); q gets k - j
    trained: tuple = eqx.field(static=True)  # which of a, b, (r1, r2) move

    @classmethod
    def from_problem(cls, problem, d_interaction="inf", n_hermite: int = 12, *,
                     validate: bool = True) -> "AnisotropicModel":
        """The model of an anisotropic ``problem`` (``validate=False``: as ``RadialModel.from_problem``)."""
        unit, task = problem.unit, problem.task
        if not isinstance(task, AnisotropicGaussians):
            raise ConfigError("task", "the anisotropic DD needs the AnisotropicGaussians task")
        if not isinstance(unit, ProjectionUnit):
            raise ConfigError("unit", "the anisotropic DD needs a ProjectionUnit a*sigma(<w,x>+b)")
        if validate and problem.alpha != 1.0:
            raise ConfigError("alpha", "the anisotropic DD is the mean-field (alpha = 1) dynamics")
        finite = math.isfinite(interaction_dimension(task.d, d_interaction))
        check(isinstance(n_hermite, (int, np.integer)) and n_hermite >= 1, "n_hermite",
              f"must be an integer >= 1, got {n_hermite}")
        if finite:
            m1 = _block_moments(task.s0, n_hermite)
            m2 = _block_moments(task.d - task.s0, n_hermite)
            ks, js, ws = [], [], []
            for k in range(0, n_hermite, 2):
                for j in range(0, k + 1, 2):
                    ks.append(k)
                    js.append(j)
                    ws.append(float(comb(k, j, exact=True)) * m1[j] * m2[k - j])
        else:
            ks, js, ws = [0], [0], [1.0]
        tr = set(unit.trained)
        trained = tuple(n for n in ANISOTROPIC_COORDS if (n in tr) or (n in ("r1", "r2") and "w" in tr))
        V, L = _weights_two_class(np.asarray(ws), len(ws))
        return cls(v_weights=V, u_weights=L, r_sharp=np.asarray(1.0), activation=unit.activation,
                   taus=_leaf(task.taus), ks=tuple(ks), js=tuple(js), trained=trained)

    @property
    def n_terms(self) -> int:
        return max(self.ks) + 1

    def _powers(self, x):
        """x^0 .. x^(K-1) by repeated products, shape (K, M)."""
        out = [jnp.ones_like(x)]
        for _ in range(self.n_terms - 1):
            out.append(out[-1] * x)
        return jnp.stack(out)

    def _class_parts(self, th, tau, grad: bool):
        """S_tau, p, q and chat_k(S_tau, b) (with d/dS, d/db when ``grad``) for one class."""
        r1, r2 = th["r1"], th["r2"]
        S = jnp.sqrt(tau * tau * r1 * r1 + r2 * r2 + 1e-300)
        p, q = tau * r1 / S, r2 / S
        if grad:
            c, cs, cb = self.activation.coeffs_with_grad(S, th["b"], self.n_terms)
        else:
            c, cs, cb = self.activation.hermite_coeffs(S, th["b"], self.n_terms), None, None
        return S, p, q, c, cs, cb

    def features(self, th):
        """phi_{c,f}(theta) = a chat_k(S_c, b) p^j q^(k-j), shape (2, F, M)."""
        ks, js = np.asarray(self.ks), np.asarray(self.js)
        out = []
        for ci in range(2):
            _, p, q, c, _, _ = self._class_parts(th, self.taus[ci], grad=False)
            f = th["a"][None] * c[ks]
            if self.n_terms > 1:
                f = f * self._powers(p)[js] * self._powers(q)[ks - js]
            out.append(f)
        return jnp.stack(out)

    def features_and_grads(self, th):
        """Features (2, F, M) and their partial derivatives in a, b, r1, r2 (analytic chain rule).

        S_r1 = tau p, S_r2 = q, p_r1 = tau q^2/S, p_r2 = -p q/S, q_r1 = -tau p q/S, q_r2 = p^2/S
        (p = tau r1/S, q = r2/S, p^2 + q^2 = 1).
        """
        ks, js = np.asarray(self.ks), np.asarray(self.js)
        ls = ks - js
        a = th["a"][None]
        F, dA, dB, dR1, dR2 = [], [], [], [], []
        for ci in range(2):
            tau = self.taus[ci]
            S, p, q, c, cs, cb = self._class_parts(th, tau, grad=True)
            C, Cs, Cb = c[ks], cs[ks], cb[ks]
            if self.n_terms > 1:
                pp, qp = self._powers(p), self._powers(q)
                P, Q = pp[js], qp[ls]
                # j p^(j-1) (0 for j = 0): index j-1 clipped at 0 and multiplied by j
                dP = jnp.asarray(js, dtype=float)[:, None] * pp[np.maximum(js - 1, 0)]
                dQ = jnp.asarray(ls, dtype=float)[:, None] * qp[np.maximum(ls - 1, 0)]
                PQ = P * Q
                dr1 = Cs * (tau * p) * PQ + C * (dP * Q * (tau * q * q / S) - P * dQ * (tau * p * q / S))
                dr2 = Cs * q * PQ + C * (-dP * Q * (p * q / S) + P * dQ * (p * p / S))
            else:
                PQ = 1.0
                dr1, dr2 = Cs * (tau * p), Cs * q
            F.append(a * C * PQ)
            dA.append(C * PQ)
            dB.append(a * Cb * PQ)
            dR1.append(a * dr1)
            dR2.append(a * dr2)
        return jnp.stack(F), {"a": jnp.stack(dA), "b": jnp.stack(dB), "r1": jnp.stack(dR1), "r2": jnp.stack(dR2)}

    def grad_psi(self, th, S=None):
        """grad psi(theta_i; rhobar) for every particle (dict of (M,) arrays; untrained -> 0), and S."""
        g, S = super().grad_psi(th, S)
        return {k: (g[k] if k in self.trained else jnp.zeros_like(th[k])) for k in ANISOTROPIC_COORDS}, S
