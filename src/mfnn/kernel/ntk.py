"""The kernel at initialization H_rho0 (COLT 2019 eq. 16), Monte Carlo for any unit.

    H_rho(x, x') = int < grad_theta sigma_*(x; theta), grad_theta sigma_*(x'; theta) > rho(dtheta)   (eq. 16)

restricted to the TRAINED leaves of theta (``unit.trained``): the gradient flow moves only those,
so only they enter the residual dynamics (RD).  The finite-N estimate (COLT 2019, the empirical
kernel of eq. 16)

    H(x, z; theta) = (1/N) sum_j < grad sigma_*(x; theta_j), grad sigma_*(z; theta_j) >

is computed by autodiff (``jax.grad`` of ``unit.apply``); with theta_j i.i.d. rho_0 it is an
unbiased Monte Carlo estimate of H_rho0 with error O(N^{-1/2}).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..errors import check


def _trained(unit):
    tr = tuple(unit.trained)
    check(len(tr) > 0, "unit.trained", "the kernel needs at least one trained parameter")
    return tr


def features(unit, theta, x):
    """Per-neuron gradients of sigma_* w.r.t. the trained leaves, flattened.

    theta: dict of arrays with leading axis N; x: (n, d).  Returns (n, N, D) with D the number
    of trained coordinates of one neuron (``unit.n_trained(d)``).
    """
    trained = _trained(unit)

    def one(th, xx):
        g = jax.grad(unit.apply)(th, xx)
        return jnp.concatenate([jnp.ravel(g[k]) for k in trained])

    return jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0))(theta, jnp.asarray(x))


def empirical_kernel(unit, theta, x, z=None, *, chunk: int | None = None):
    """H(x_i, z_k; theta) = (1/N) sum_j <grad sigma_*(x_i; theta_j), grad sigma_*(z_k; theta_j)>.

    Returns the (n_x, n_z) Gram matrix (``z`` defaults to ``x``, giving a symmetric PSD matrix).
    ``chunk``: process neurons in chunks of this size (``lax.map``) to bound memory at
    n * chunk * D floats.
    """
    x = jnp.asarray(x)
    same = z is None
    z = x if same else jnp.asarray(z)
    N = jax.tree_util.tree_leaves(theta)[0].shape[0]
    if chunk is None or chunk >= N:
        fx = features(unit, theta, x)
        fz = fx if same else features(unit, theta, z)
        return jnp.einsum("inp,knp->ik", fx, fz) / N
    check(N % chunk == 0, "chunk", f"must divide the number of neurons {N}")
    blocks = jax.tree_util.tree_map(lambda a: a.reshape((N // chunk, chunk) + a.shape[1:]), theta)

    def partial(th):
        fx = features(unit, th, x)
        fz = fx if same else features(unit, th, z)
        return jnp.einsum("inp,knp->ik", fx, fz)

    return jnp.sum(jax.lax.map(partial, blocks), axis=0) / N


def mc_kernel(problem_or_unit, init, x, z=None, *, n_neurons: int, key, chunk: int | None = None, d=None):
    """Monte Carlo estimate of H_rho0 (eq. 16) with ``n_neurons`` i.i.d. draws from ``init``.

    ``problem_or_unit`` is a ``Problem`` (its unit and d are used; ``init`` may be None to use
    the problem's) or a ``Unit`` (then pass ``init``; d defaults to x.shape[-1]).
    """
    unit = getattr(problem_or_unit, "unit", problem_or_unit)
    if init is None:
        init = problem_or_unit.init
    x = jnp.asarray(x)
    d = int(x.shape[-1]) if d is None else int(d)
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    theta = init.sample(key, n_neurons, unit.param_shapes(d), x.dtype)
    return empirical_kernel(unit, theta, x, z, chunk=chunk)
