"""Regression on a target: y = f(x) + sigma_noise * g, x ~ mu (Rotskoff-Vanden-Eijnden 2018 eqs. 1.2-1.4).

``Regression(inputs, target, noise, n_mc)`` is a ``Task``: ``sample(key, n, dtype, realization)``
draws (x, y); the population terms V = -E y sigma_*, U = E sigma_* sigma_*' of the existing
``MonteCarloTerms`` (on ``n_mc`` points) are RV's -c F(y) and c c' K(y, y'), so no terms class is
registered.  :func:`population_terms` gives C_f, F and K themselves and :func:`test_loss` the loss
l = (1/2) E|f - f_n|^2 (RV eq. 4.8) on an independent sample whose size is an argument, drawn from the seed ``TEST_KEY`` (apart from
every training and initialization stream).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import check
from ..numerics.pytree import is_tracer, real, to_int
from .inputs import InputLaw
from .targets import Target
from .tasks import Task

__all__ = ["Regression", "population_terms", "test_loss", "network_values", "TEST_KEY"]

TEST_KEY = 2**31 - 7  # the seed of the test sample, independent of training data and init streams


class Regression(Task):
    """y = f(x) + noise * N(0, 1), x ~ ``inputs``; f a ``Target`` of the same dimension."""

    inputs: InputLaw
    target: Target
    noise: float = real("noise", 0.0)
    n_mc: int = eqx.field(static=True, default=20000, converter=lambda v: to_int("n_mc", v, minimum=1, maximum=10**8))

    def __check_init__(self):
        check(isinstance(self.inputs, InputLaw), "inputs", f"must be an InputLaw, got {type(self.inputs).__name__}")
        check(isinstance(self.target, Target), "target", f"must be a Target, got {type(self.target).__name__}")
        check(self.target.d == self.inputs.d, "target",
              f"has dimension {self.target.d} but the inputs have d = {self.inputs.d}")
        check(is_tracer(self.noise) or self.noise >= 0, "noise", f"must be >= 0, got {self.noise}")

    @property
    def d(self) -> int:
        return self.inputs.d

    def sample(self, key, n: int, dtype=jnp.float64, realization=0):
        x, ky = self.sample_inputs(key, n, dtype)
        return x, self.labels(x, ky, realization)

    def sample_inputs(self, key, n: int, dtype=jnp.float64):
        """The x half of :meth:`sample`: ``n`` inputs and the key of their label noise.

        Parameters
        ----------
        key : jax.Array
            the PRNG key :meth:`sample` would take (split into the input and the noise key).
        n : int
            number of points.
        dtype : dtype
            float dtype of x.

        Returns
        -------
        tuple
            ``(x, noise_key)`` with x of shape (n, d).
        """
        kx, ky = jax.random.split(key)
        return self.inputs.sample(kx, n, dtype), ky

    def labels(self, x, noise_key, realization=0):
        """The y half of :meth:`sample`: f(x) plus ``noise`` times standard normals.

        The split of :meth:`sample`'s key is fixed, so skipping the draw when the noise is zero moves
        no seeded result.  A concrete zero skips it at trace time; a traced noise (every leaf is
        traced inside ``mfnn.solve``, so sweeps over it do not recompile) draws only when nonzero,
        through ``lax.cond``: on XLA:CPU the draw is a rolled threefry loop, ~25% of the RV SGD step
        at n = 1024, d = 25, P = 200 (measured 2026-12-03; a lone ``sample`` call gains nothing).

        Parameters
        ----------
        x : jax.Array
            inputs (n, d).
        noise_key : jax.Array
            the key returned by :meth:`sample_inputs`.
        realization : int
            which realization of a random target (e.g. the 3-spin couplings).

        Returns
        -------
        jax.Array
            y of shape (n,), in x's dtype.
        """
        dtype = x.dtype
        y = self.target.values(x, realization).astype(dtype)
        add = lambda y: y + jnp.asarray(self.noise, dtype) * jax.random.normal(noise_key, (x.shape[0],), dtype)  # noqa: E731
        if is_tracer(self.noise):
            return jax.lax.cond(self.noise != 0, add, lambda y: y, y)
        return y if float(self.noise) == 0.0 else add(y)

    @property
    def y_second_moment(self) -> float:
        """E y^2 by Monte Carlo on ``n_mc`` points (realization 0)."""
        _, y = self.sample(jax.random.PRNGKey(12345), self.n_mc, jnp.float32)
        return float(jnp.mean(y.astype(jnp.float32) ** 2))


def network_values(unit, theta, x):
    """c_i phi(x_p, y_i) values (P, n) and f_n(x) = (1/n) sum_i c_i phi(x, y_i) (P,) for a batch x (P, d)."""
    if hasattr(unit, "batch_apply"):
        phi = unit.batch_apply(theta, x)
    else:
        phi = jax.vmap(jax.vmap(lambda th, xx: unit.apply(th, xx), in_axes=(0, None)), in_axes=(None, 0))(theta, x)
    return phi, jnp.mean(phi, axis=1)


def population_terms(task, unit, theta, n_mc: int, key, realization=0) -> dict:
    """Monte Carlo C_f = (1/2) E f^2, F(y_i) = E f phi(x, y_i) (n,), K(y_i, y_j) = E phi_i phi_j (n, n)
    on ``n_mc`` fresh points (RV 2018 eq. 1.4; the noiseless target f, not y)."""
    x = task.inputs.sample(key, n_mc, jax.tree_util.tree_leaves(theta)[0].dtype)
    f = task.target.values(x, realization)
    phi = jax.vmap(jax.vmap(unit.phi, in_axes=(0, None)), in_axes=(None, 0))(theta, x)  # (M, n)
    return {"C_f": 0.5 * jnp.mean(f * f), "F": phi.T @ f / n_mc, "K": phi.T @ phi / n_mc}


def test_loss(task, unit, theta, n_test: int, realization=0, chunk: int = 4096, key=None) -> dict:
    """On ``n_test`` independent points (seed ``TEST_KEY`` unless ``key``): ``loss`` = (1/2) mean
    (f - f_n)^2 (RV eq. 4.8) and the signed errors of RV Fig. 3, ``signed_pos`` = mean Theta(f)(f - f_n)
    and ``signed_neg`` = mean Theta(-f)(f - f_n).  Evaluated in chunks of ``chunk`` points."""
    dtype = jax.tree_util.tree_leaves(theta)[0].dtype
    key = jax.random.PRNGKey(TEST_KEY) if key is None else key
    chunk = min(int(chunk), int(n_test))
    m = -(-n_test // chunk)

    def one(i):
        x = task.inputs.sample(jax.random.fold_in(key, i), chunk, dtype)
        f = task.target.values(x, realization)
        valid = (i * chunk + jnp.arange(chunk)) < n_test
        e = jnp.where(valid, f - network_values(unit, theta, x)[1], 0.0)
        return jnp.stack([0.5 * jnp.sum(e * e), jnp.sum(jnp.where(f > 0, e, 0.0)), jnp.sum(jnp.where(f < 0, e, 0.0))])

    s = jnp.sum(jax.lax.map(one, jnp.arange(m)), axis=0) / n_test
    return {"loss": s[0], "signed_pos": s[1], "signed_neg": s[2]}
