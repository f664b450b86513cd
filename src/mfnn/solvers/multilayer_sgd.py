"""SGD / GD for mean-field multilayer networks (Nguyen–Pham 2020; Pham–Nguyen ICLR 2021 sec. 2):

    w_i(k+1) = w_i(k) - eps * xi_i(k eps) * Grad_i(z(k); W(k)),      Grad_i = n_{i-1} n_i dl/dw_i,

n_0 = n_L = 1, time t = k eps (``MultilayerNetwork.mf_grads``).  Per-layer schedules xi_i: a
``Schedule``, a number, or 0 / None (the layer, and its bias, is frozen).  Data modes:

* online (default): a fresh batch of ``batch_size`` samples of the task at each step, drawn from
  fold_in(data_key, k) exactly as ``OnlineSGD`` does (on a ``FiniteDataset`` this is mini-batch
  SGD with replacement);
* ``full_batch=True``: GD on one training set: the rows of a ``FiniteDataset`` (its first
  ``n_train`` if given) or ``n_train`` samples of the task drawn once per run.  Full-batch GD with
  small eps is the low-noise simulator of the mean-field ODE.

Replica r: initial weights from fold_in(fold_in(key, r), 0), data from fold_in(fold_in(key, r), 1)
(the key layout of ``OnlineSGD``, so a depth-2 network reproduces it); training and test sets
depend on ``key`` only, so runs at different widths with one key share data and prefix-coupled
initial weights.  Observables: ``loss`` (test loss: the whole data set of a ``FiniteDataset``,
else ``n_test`` fresh samples; replica), ``train_loss`` (full batch; replica), ``sd``
(sd_i = mean_x std_j H_i(x, j) on the first ``n_probe`` test inputs, absolute; replica, layer),
``params`` (``params/w1`` ...; replica, ...), ``features`` (``features/H<i>`` on the probe
inputs; replica, probe, neuron).  A ``SaveAt.fn`` receives ``(problem, {"params", "init",
"x_probe"})`` per replica (``init``: the initial weights when ``keep_init=True``, else the current
ones), e.g. ``mfnn.analysis.multilayer.degeneracy_observer``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, check
from ..numerics.pytree import is_tracer, real, to_int
from ..numerics.schedules import Schedule, as_schedule
from ..problem.datasets import FiniteDataset
from ..problem.multilayer import MultilayerProblem
from ._driver import Method
from .fields import choice

__all__ = ["MultilayerSGD"]

_MAX_STEPS = 2**62


@eqx.filter_jit
def _sample_all(problem, rkeys, dtype: str):
    """Initial weights of every replica (one compiled program instead of op-by-op dispatch)."""
    return jax.vmap(lambda k: problem.sample_init(jax.random.fold_in(k, 0), jnp.dtype(dtype)))(rkeys)


def _xi(spec):
    """A schedule for every layer (one spec) or a tuple with None for frozen layers."""
    one = lambda s: None if s is None or (isinstance(s, (int, float)) and not isinstance(s, bool) and s == 0) \
        else as_schedule(s)  # noqa: E731
    if isinstance(spec, (list, tuple)):
        check(len(spec) >= 1, "xi", "need at least one schedule")
        return tuple(one(s) for s in spec)
    s = one(spec)
    check(s is not None, "xi", "a single schedule must be > 0 (use a per-layer list to freeze layers)")
    return s


class MultilayerSGD(Method):
    """Mean-field SGD / GD for a ``MultilayerProblem`` (module docstring)."""

    eps: float = real("eps", 0.01)
    xi: object = eqx.field(default=1.0, converter=_xi)
    batch_size: int = eqx.field(static=True, default=1, converter=lambda v: to_int("batch_size", v, minimum=1, maximum=2**20))
    full_batch: bool = eqx.field(static=True, default=False)
    n_train: int = eqx.field(static=True, default=0, converter=lambda v: to_int("n_train", v, minimum=0, maximum=2**24))
    n_test: int = eqx.field(static=True, default=2000, converter=lambda v: to_int("n_test", v, minimum=1, maximum=2**24))
    n_probe: int = eqx.field(static=True, default=256, converter=lambda v: to_int("n_probe", v, minimum=2, maximum=2**20))
    replicas: int = eqx.field(static=True, default=1, converter=lambda v: to_int("replicas", v, minimum=1, maximum=2**16))
    dtype: str = eqx.field(static=True, default="float64", converter=choice("dtype", ("float32", "float64")))
    keep_init: bool = eqx.field(static=True, default=False)

    label = "multilayer SGD"
    default_observables = ("loss", "sd")

    def __check_init__(self):
        check(isinstance(self.full_batch, bool), "full_batch", f"must be a bool, got {self.full_batch!r}")
        if not is_tracer(self.eps):
            check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")

    def schedules(self, depth: int) -> tuple:
        if isinstance(self.xi, Schedule):
            return (self.xi,) * depth
        check(len(self.xi) == depth, "xi", f"need one schedule per weight layer (L = {depth}), got {len(self.xi)}")
        return self.xi

    def save_steps(self, times) -> np.ndarray:
        with np.errstate(over="ignore"):
            steps = np.round(np.asarray(times, dtype=float) / float(self.eps))
        check(bool(np.all(steps < _MAX_STEPS)), "eps", f"t / eps = {steps.max():.3g} steps overflows the step counter")
        return steps.astype(np.int64)

    # --- method protocol -----------------------------------------------------------------
    def available(self, problem) -> tuple:
        return ("loss",) + (("train_loss",) if self.full_batch else ()) + ("sd", "params", "features")

    def dims(self, name):
        if name in ("loss", "train_loss"):
            return ("replica",)
        if name == "sd":
            return ("replica", "layer")
        if name.startswith("features/"):
            return ("replica", "probe", "neuron")
        return ("replica",)

    def _data(self, problem, key, dtype):
        task = problem.task
        if isinstance(task, FiniteDataset):
            n = task.size if self.n_train == 0 else min(self.n_train, task.size)
            x, y = jnp.asarray(task.x, dtype), jnp.asarray(task.y, dtype)
            return {"x": x[:n], "y": y[:n], "x_test": x, "y_test": y}
        data = {}
        if self.full_batch:
            if self.n_train == 0:
                raise ConfigError("n_train", "full-batch GD on a sampled task needs n_train > 0 (the training set size)")
            data["x"], data["y"] = task.sample(jax.random.fold_in(key, 2**30 + 2), self.n_train, dtype)
        data["x_test"], data["y_test"] = task.sample(jax.random.fold_in(key, 2**30 + 3), self.n_test, dtype)
        return data

    def init(self, problem, times, key):
        check(isinstance(problem, MultilayerProblem), "problem", f"need a MultilayerProblem, got {type(problem).__name__}")
        self.schedules(problem.net.depth)  # checks the length
        dtype = jnp.dtype(self.dtype)
        R = self.replicas
        rkeys = jax.vmap(lambda r: jax.random.fold_in(key, r))(jnp.arange(R))
        params = _sample_all(problem, rkeys, self.dtype)
        dkeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(rkeys)
        steps = self.save_steps(times)
        k0 = np.concatenate([[0], steps[:-1]])
        work = (steps - k0).astype(float) * max(1.0, float(problem.net.n_params()) / 1e5)
        data = {k: v.astype(dtype) for k, v in self._data(problem, key, jnp.float64).items()}
        if self.keep_init:
            data["init"] = params
        return (params, dkeys, data), {"k0": k0, "n": steps - k0, "work": work}

    def make_step(self, problem, dkey, data):
        """step(k, params) -> params for one replica."""
        net, task = problem.net, problem.task
        dtype = jnp.dtype(self.dtype)
        xis = self.schedules(net.depth)
        eps = self.eps

        def step(k, params):
            if self.full_batch:
                x, y = data["x"], data["y"]
            else:
                x, y = task.sample(jax.random.fold_in(dkey, k), self.batch_size, dtype)
            g = net.mf_grads(params, x, y)
            t = k * eps
            new = dict(params)
            for name, gv in g.items():
                xi = xis[int(name[1:]) - 1]
                if xi is None:
                    continue
                s = (eps * xi(t)).astype(dtype)
                new[name] = (params[name] - s * gv).astype(dtype)
            return new

        return step

    def segment(self, problem, state, seg):
        params, dkeys, data = state

        def adv(p, dk):
            return jax.lax.fori_loop(seg["k0"], seg["k0"] + seg["n"], self.make_step(problem, dk, data), p)

        return jax.vmap(adv)(params, dkeys), dkeys, data

    def observe(self, problem, state, names, fn):
        params, _, data = state
        net = problem.net
        xp = data["x_test"][: self.n_probe]

        def one(p):
            out = {}
            if "loss" in names:
                out["loss"] = net.empirical_loss(p, data["x_test"], data["y_test"]).astype(jnp.float64)
            if "train_loss" in names:
                out["train_loss"] = net.empirical_loss(p, data["x"], data["y"]).astype(jnp.float64)
            if "sd" in names or "features" in names:
                Hs, _ = net.hidden(p, xp)
                if "sd" in names:
                    out["sd"] = jnp.stack([jnp.mean(jnp.std(H, axis=1)) for H in Hs]).astype(jnp.float64)
                if "features" in names:
                    out.update({f"features/H{i + 1}": H for i, H in enumerate(Hs)})
            if "params" in names:
                out.update({f"params/{k}": v for k, v in p.items()})
            return out

        out = jax.vmap(one)(params)
        if fn is not None:
            p0 = data.get("init", params)
            out.update(jax.vmap(lambda p, q: fn(problem, {"params": p, "init": q, "x_probe": xp}))(params, p0))
        return out
