"""Mean-field multilayer networks of any depth (Nguyen–Pham 2020; Pham–Nguyen ICLR 2021 eqs. for
three layers, extended to depth L as in their general-depth framework).

Depth L counts weight layers w_1 .. w_L (L - 1 hidden layers of widths n_1 .. n_{L-1}):

    H_1(x, j)   = <w_1(j), x> (+ b_1(j))
    H_i(x, j_i) = (1/n_{i-1}) sum_{j_{i-1}} w_i(j_{i-1}, j_i) phi_{i-1}(H_{i-1}(x, j_{i-1})) (+ b_i(j_i))
    H_L(x)      = (1/n_{L-1}) sum_j w_L(j) phi_{L-1}(H_{L-1}(x, j)) (+ b_L),      yhat = phi_L(H_L)

Every layer *averages* over the previous one; weights are O(1).  Parameters are a dict:
``w1`` (d, n_1), ``w<i>`` (n_{i-1}, n_i), ``w<L>`` (n_{L-1},), biases ``b<i>`` (n_i,) (``b<L>`` a
scalar) for the layers listed in ``biases``.  All hidden-to-hidden products are matmuls.

:meth:`MultilayerNetwork.mf_grads` is the rescaled backward pass of the papers (ICLR 2021 eq. for
Grad_i, depth L by the chain rule): Grad_i = n_{i-1} n_i dl/dw_i (n_0 = n_L = 1), O(1) per entry;
SGD moves w_i by -eps xi_i(t) Grad_i (``mfnn.solvers.MultilayerSGD``).  Losses: ``squared``
(y - yhat)^2 (the PNAS 2018 risk convention, so a depth-2 network is the PNAS model) and ``huber``
(equal to the squared loss for |y - yhat| <= delta, linear beyond).

``MultilayerProblem(net, task, init)`` is the multilayer counterpart of ``Problem``; the initial
law is a neuronal embedding (``mfnn.problem.embeddings``).  :func:`from_two_layer` turns a PNAS
``Problem(ProjectionUnit, task, init)`` into the same object in this form.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ..errors import ConfigError, check
from ..numerics.pytree import Module, is_tracer, real, to_int
from .activations import Activation, get_activation
from .tasks import Task

__all__ = ["Identity", "MultilayerNetwork", "MultilayerProblem", "TwoLayerInit", "multilayer", "from_two_layer",
           "params_from_two_layer"]

LOSSES = ("squared", "huber")


class Identity(Activation):
    """phi(t) = t (the usual output activation)."""

    name: str = eqx.field(static=True, default="identity")

    def value(self, t):
        return t

    def deriv(self, t):
        return jnp.ones_like(t)


def _activation(spec, field: str) -> Activation:
    if isinstance(spec, str) and spec in ("identity", "linear"):
        return Identity()
    try:
        return get_activation(spec)
    except ConfigError as e:
        raise ConfigError(field, str(e).split(": ", 1)[-1]) from None


def _widths(v) -> tuple:
    if isinstance(v, (int,)) and not isinstance(v, bool):
        v = (v,)
    if not isinstance(v, (tuple, list)):
        raise ConfigError("widths", f"must be a sequence of positive integers (n_1, ..., n_(L-1)), got {v!r}")
    check(len(v) >= 1, "widths", "depth L = len(widths) + 1 must be >= 2 (give at least one hidden width)")
    return tuple(to_int("widths", n, minimum=1, maximum=2**24) for n in v)


class MultilayerNetwork(Module):
    """A mean-field network of depth L = len(widths) + 1 (module docstring).

    ``activations``: one spec per layer (phi_1 .. phi_L), or one spec used for the hidden layers
    with an identity output.  ``biases``: the layers (1..L) that carry a bias.
    """

    d: int = eqx.field(static=True, converter=lambda v: to_int("d", v, minimum=1, maximum=10**6))
    widths: tuple = eqx.field(static=True, converter=_widths)
    activations: tuple = "tanh"
    biases: tuple = eqx.field(static=True, default=(), converter=lambda b: tuple(b) if isinstance(b, (tuple, list)) else (b,))
    loss: str = eqx.field(static=True, default="squared")
    huber_delta: float = real("huber_delta", 1.0)

    def __post_init__(self):
        acts = self.activations
        L = len(self.widths) + 1
        if isinstance(acts, (str, Activation)):
            acts = (acts,) * (L - 1) + ("identity",)
        check(isinstance(acts, (tuple, list)) and len(acts) == L, "activations",
              f"need one activation per layer (L = {L}), got {acts!r}")
        self.activations = tuple(_activation(a, f"activations[{i}]") for i, a in enumerate(acts))

    def __check_init__(self):
        check(self.loss in LOSSES, "loss", f"unknown loss {self.loss!r}; choose from {LOSSES}")
        for b in self.biases:
            check(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= self.depth, "biases",
                  f"layer indices must be in [1, {self.depth}], got {self.biases!r}")
        check(is_tracer(self.huber_delta) or self.huber_delta > 0, "huber_delta", f"must be > 0, got {self.huber_delta}")

    # --- structure -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.widths) + 1

    @property
    def sizes(self) -> tuple:
        """(n_0, n_1, ..., n_L) with n_0 = n_L = 1: the learning-rate factors n_{i-1} n_i."""
        return (1,) + self.widths + (1,)

    def param_shapes(self) -> dict:
        L, n = self.depth, (self.d,) + self.widths
        out = {"w1": (self.d, n[1]) if L > 1 else (self.d,)}
        for i in range(2, L):
            out[f"w{i}"] = (n[i - 1], n[i])
        out[f"w{L}"] = (n[L - 1],)
        for i in self.biases:
            out[f"b{i}"] = (n[i],) if i < L else ()
        return out

    def lr_factor(self, name: str) -> int:
        """n_{i-1} n_i for w_i, n_i for b_i: Grad = factor * dl/dparam (module docstring)."""
        i, s = int(name[1:]), self.sizes
        return s[i - 1] * s[i] if name[0] == "w" else s[i]

    def n_params(self) -> int:
        import math

        return sum(math.prod(s) for s in self.param_shapes().values())

    # --- forward -----------------------------------------------------------------------------
    def hidden(self, params, x):
        """([H_1, ..., H_{L-1}] each (B, n_i), H_L (B,)) for inputs x (B, d)."""
        L, acts, n = self.depth, self.activations, (self.d,) + self.widths
        dt = params["w1"].dtype
        H = x.astype(dt) @ params["w1"]
        if 1 in self.biases:
            H = H + params["b1"]
        Hs = [H]
        for i in range(2, L):
            H = (acts[i - 2](H) @ params[f"w{i}"]) / n[i - 1]
            if i in self.biases:
                H = H + params[f"b{i}"]
            Hs.append(H)
        HL = (acts[L - 2](H) @ params[f"w{L}"]) / n[L - 1]
        if L in self.biases:
            HL = HL + params[f"b{L}"]
        return Hs, HL

    def predict(self, params, x):
        return self.activations[-1](self.hidden(params, x)[1])

    def loss_value(self, y, yhat):
        r = yhat - y
        if self.loss == "squared":
            return r * r
        dlt = jnp.asarray(self.huber_delta, r.dtype)
        return jnp.where(jnp.abs(r) <= dlt, r * r, 2 * dlt * jnp.abs(r) - dlt * dlt)

    def loss_deriv(self, y, yhat):
        """d_2 L(y, yhat)."""
        r = yhat - y
        if self.loss == "squared":
            return 2 * r
        dlt = jnp.asarray(self.huber_delta, r.dtype)
        return 2 * jnp.clip(r, -dlt, dlt)

    def empirical_loss(self, params, x, y):
        """(1/B) sum_b L(y_b, yhat(x_b)): the loss whose autodiff gradient times n_{i-1} n_i is Grad_i."""
        return jnp.mean(self.loss_value(y.astype(params["w1"].dtype), self.predict(params, x)))

    # --- rescaled backward pass --------------------------------------------------------------
    def mf_grads(self, params, x, y):
        """Grad_i averaged over the batch (Pham–Nguyen ICLR 2021, section 2, depth L):

        Delta_L = d_2 L phi_L'(H_L);  Delta_{L-1}(j) = Delta_L w_L(j) phi_{L-1}'(H_{L-1}(j));
        Delta_i(j_i) = [(1/n_{i+1}) sum Delta_{i+1} w_{i+1}(j_i, .)] phi_i'(H_i(j_i));
        Grad_L = Delta_L phi_{L-1}(H_{L-1}),  Grad_i = phi_{i-1}(H_{i-1}) (x) Delta_i,  Grad_1 = x (x) Delta_1;
        bias gradients Delta_i.  Equal to n_{i-1} n_i times autodiff of ``empirical_loss``.
        """
        L, acts, n = self.depth, self.activations, (self.d,) + self.widths
        dt = params["w1"].dtype
        x = x.astype(dt)
        B = x.shape[0]
        Hs, HL = self.hidden(params, x)
        yhat = acts[L - 1](HL)
        delta = self.loss_deriv(y.astype(dt), yhat) * acts[L - 1].deriv(HL)  # (B,)
        g = {}
        phi = acts[L - 2](Hs[-1])
        g[f"w{L}"] = (delta @ phi) / B
        if L in self.biases:
            g[f"b{L}"] = jnp.mean(delta)
        D = delta[:, None] * params[f"w{L}"][None, :] * acts[L - 2].deriv(Hs[-1])  # Delta_{L-1} (B, n_{L-1})
        for i in range(L - 1, 1, -1):
            if i in self.biases:
                g[f"b{i}"] = jnp.mean(D, axis=0)
            phi_prev = acts[i - 2](Hs[i - 2])
            g[f"w{i}"] = (phi_prev.T @ D) / B
            D = ((D @ params[f"w{i}"].T) / n[i]) * acts[i - 2].deriv(Hs[i - 2])
        if 1 in self.biases:
            g["b1"] = jnp.mean(D, axis=0)
        g["w1"] = (x.T @ D) / B
        return g


def multilayer(d: int, depth: int, width: int, activation="tanh", **kw) -> MultilayerNetwork:
    """A network of ``depth`` weight layers, all hidden widths ``width``, tanh hidden layers and an
    identity output by default."""
    depth = to_int("depth", depth, minimum=0, maximum=64)
    check(depth >= 2, "depth", f"must be >= 2 (number of weight layers), got {depth}")
    width = to_int("width", width, minimum=1, maximum=2**24)
    return MultilayerNetwork(d=d, widths=(width,) * (depth - 1), activations=activation, **kw)


class MultilayerProblem(Module):
    """Network + task + initial law (a neuronal embedding with ``sample(key, net, dtype)``)."""

    net: MultilayerNetwork
    task: Task
    init: Module

    def __check_init__(self):
        check(isinstance(self.net, MultilayerNetwork), "net", f"must be a MultilayerNetwork, got {type(self.net).__name__}")
        check(isinstance(self.task, Task), "task", f"must be a Task, got {type(self.task).__name__}")
        check(hasattr(self.init, "sample"), "init", f"must be a neuronal embedding, got {type(self.init).__name__}")
        check(self.task.d == self.net.d, "net.d", f"the network's input dimension {self.net.d} != task.d = {self.task.d}")

    @property
    def d(self) -> int:
        return self.net.d

    def sample_init(self, key, dtype=jnp.float64):
        return self.init.sample(key, self.net, dtype)

    def with_widths(self, widths) -> "MultilayerProblem":
        """The same problem at other widths (prefix-coupled initial weights for the same key)."""
        return eqx.tree_at(lambda p: p.net, self, MultilayerNetwork(
            d=self.net.d, widths=tuple(widths), activations=self.net.activations, biases=self.net.biases,
            loss=self.net.loss, huber_delta=self.net.huber_delta))


def params_from_two_layer(theta: dict) -> dict:
    """PNAS parameters {a (N,), b (N,), w (N, d)} -> depth-2 parameters {w1 (d, N), w2 (N,), b1 (N,)}."""
    return {"w1": jnp.swapaxes(theta["w"], -1, -2), "w2": theta["a"], "b1": theta["b"]}


class TwoLayerInit(Module):
    """The initial law of a PNAS ``Problem`` as a depth-2 embedding (same draws, same keys)."""

    init: Module
    unit: Module
    with_bias: bool = eqx.field(static=True, default=False)

    def sample(self, key, net, dtype=jnp.float64):
        theta = self.init.sample(key, net.widths[0], self.unit.param_shapes(net.d), dtype)
        p = params_from_two_layer(theta)
        return p if self.with_bias else {k: v for k, v in p.items() if k != "b1"}


def from_two_layer(problem, n_neurons: int) -> tuple:
    """(MultilayerProblem, xi) for a PNAS ``Problem(ProjectionUnit(act, trained), task, init)`` on
    ``n_neurons`` neurons with
    alpha = 1 and no constraint: yhat = (1/N) sum a_i act(<w_i, x> + b_i) is the depth-2 network
    with w_1 = w, w_2 = a, b_1 = b, identity output.  ``xi`` = per-layer factors (1.0 trained,
    0.0 frozen) for ``MultilayerSGD``; a trained b needs a trained w (biases follow their layer)."""
    from .problem import Problem
    from .units import ProjectionUnit

    check(isinstance(problem, Problem) and isinstance(problem.unit, ProjectionUnit), "problem",
          "need a Problem with a ProjectionUnit")
    check(float(problem.alpha) == 1.0, "problem.alpha", "only the mean-field scaling alpha = 1 has a multilayer form")
    check(problem.constraint is None, "problem.constraint", "constraints have no multilayer form")
    tr = problem.unit.trained
    check("b" not in tr or "w" in tr, "unit.trained", "a trained bias b needs a trained w (it follows layer 1)")
    has_b = "b" in tr or bool(getattr(problem.init, "b_mean", 0.0) != 0 or getattr(problem.init, "b_std", 0.0) != 0)
    check(not has_b or "b" in tr or "w" not in tr, "unit.trained",
          "a non-zero frozen bias under a trained w has no multilayer form")
    net = MultilayerNetwork(d=problem.d, widths=(n_neurons,), activations=(problem.unit.activation, "identity"),
                            biases=(1,) if has_b else ())
    mp = MultilayerProblem(net, problem.task, TwoLayerInit(problem.init, problem.unit, has_b))
    return mp, (1.0 if "w" in tr else 0.0, 1.0 if "a" in tr else 0.0)
