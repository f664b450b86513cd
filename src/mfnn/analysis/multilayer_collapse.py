"""The collapsed (reduced) model of an i.i.d. deep mean-field network and its comparison with the
full network (Nguyen–Pham 2020 v3 abstract: i.i.d. initialization degenerates at depth >= 4;
Pham–Nguyen ICLR 2021 sec. 1, after Araújo et al. 2019).

**Mechanism.**  With i.i.d. middle weights of mean m_i, the map c_{i-1} -> w_i^0(c_{i-1}, c_i) is
white noise: E_{C_{i-1}}[w_i^0(C_{i-1}, c_i) f(C_{i-1})] = m_i E f.  In the mean-field limit of a
depth-L >= 4 network this self-consistently gives, for all t,

* layer 2: w_2(t, c_1, c_2) = w_2(0, c_1, c_2) + a_2(t, c_1) (an increment of c_1 only), and every
  layer-2 neuron computes h_2(x) = E_{C_1}[(m_2 + a_2(t, C_1)) phi_1(H_1(x, C_1))];
* layers 3 <= i <= L - 2: w_i(t) = w_i(0) + a_i(t), one scalar shift: h_i = (m_i + a_i) phi_{i-1}(h_{i-1});
* layer L - 1: an increment of c_{L-1} only, H_{L-1}(x, c) = beta(t, c) phi_{L-2}(h_{L-2}(x)) with
  beta(t, c) = m_{L-1} + a_{L-1}(t, c);
* the output weights w_L(t, c_{L-1}) and the first layer w_1(t, c_1) (+ b_1) stay particles.

The mean-field gradients of these quantities are those of a depth-L network with widths
(n_1, 1, ..., 1, n_{L-1}) whose single middle neurons carry the means: w_2 = m_2 + a_2 (n_1, 1),
middle 1 x 1 weights m_i + a_i, w_{L-1} = beta (1, n_{L-1}) (Grad_i = n_{i-1} n_i dl/dw_i with
n_i = 1 is the limit's E_{C_i} of the rescaled gradient).  So the reduced model is simulated by
the ordinary ``MultilayerSGD`` on that narrow network (:func:`collapsed_problem`), started from
the full network's own layer-1 and output particles (the counter-based draws of
``IIDEmbedding`` give neuron j the same weights at every width) and the middle means.

**Comparison.**  :func:`collapse_projection` maps a full network to the reduced coordinates:
w_1, b_1, w_L as they are, the row means of W_2 (-> m_2 + a_2(j_1)), the mean of each middle
W_i (-> m_i + a_i), the column means of W_{L-1} (-> beta(k)).  The distance between the projected
full run and the reduced run (sup and RMS over neurons, max over saves and layers,
``trajectory_distance``) is O(n^{-1/2}) if the collapse holds, like every other finite-width
error of the coupling (Theorem 3 of ICLR 2021).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ..errors import check
from ..problem.embeddings import IIDEmbedding
from ..problem.multilayer import MultilayerNetwork, MultilayerProblem

__all__ = ["collapsed_problem", "collapse_projection", "collapse_observer", "reduced_model_distance"]


def _check_collapsible(problem) -> None:
    net = problem.net
    check(isinstance(problem, MultilayerProblem), "problem", f"need a MultilayerProblem, got {type(problem).__name__}")
    check(net.depth >= 4, "net.depth", f"the collapse holds at depth >= 4, got L = {net.depth}")
    check(isinstance(problem.init, IIDEmbedding), "init", "the collapsed model is that of an i.i.d. embedding (IIDEmbedding)")
    check(set(net.biases) <= {1, net.depth}, "net.biases",
          f"i.i.d. middle-layer biases break the identical-neuron structure; biases {net.biases} (allowed: 1, L)")


def collapsed_problem(problem: MultilayerProblem) -> MultilayerProblem:
    """The reduced model of an i.i.d. depth-L >= 4 ``problem`` (module docstring): widths
    (n_1, 1, ..., 1, n_{L-1}), the same activations, biases, loss and task, and an embedding that
    draws the same layer-1 and output particles (same key) with the middle weights at their means.

    Parameters
    ----------
    problem : MultilayerProblem
        depth >= 4, an ``IIDEmbedding``, biases only on layers 1 and L.

    Returns
    -------
    MultilayerProblem
        trained by the same ``MultilayerSGD`` and key as the full problem, it is the reduced model
        with the full run's particles.
    """
    _check_collapsible(problem)
    net = problem.net
    w = net.widths
    red = MultilayerNetwork(d=net.d, widths=(w[0],) + (1,) * (net.depth - 3) + (w[-1],), activations=net.activations,
                            biases=net.biases, loss=net.loss, huber_delta=net.huber_delta)
    emb = eqx.tree_at(lambda e: e.mid_std, problem.init, np.float64(0.0))
    return MultilayerProblem(red, problem.task, emb)


def collapse_projection(net: MultilayerNetwork, params: dict) -> dict:
    """The full network's ``params`` in the reduced model's coordinates (module docstring):
    ``{name: array}`` with the reduced model's shapes.

    Parameters
    ----------
    net : MultilayerNetwork
        the full network (depth >= 4).
    params : dict
        its parameters (``w1`` ..., ``b1``), NumPy or JAX arrays.
    """
    L = net.depth
    out = {k: v for k, v in params.items() if k in ("w1", "b1", f"w{L}", f"b{L}")}
    out["w2"] = jnp.mean(params["w2"], axis=1, keepdims=True)
    for i in range(3, L - 1):
        out[f"w{i}"] = jnp.mean(params[f"w{i}"]).reshape(1, 1)
    out[f"w{L - 1}"] = jnp.mean(params[f"w{L - 1}"], axis=0, keepdims=True)
    return out


def collapse_observer(problem, state) -> dict:
    """``SaveAt.fn`` for ``MultilayerSGD``: ``collapse/<name>`` = :func:`collapse_projection` of the
    current weights (O(n d) numbers per save instead of the n^2 middle matrices).

    Parameters
    ----------
    problem : MultilayerProblem
        the full problem.
    state : dict
        ``{"params", ...}`` for one replica (what ``MultilayerSGD.observe`` passes).
    """
    return {f"collapse/{k}": v for k, v in collapse_projection(problem.net, state["params"]).items()}


def reduced_model_distance(problem, method, times, projected: dict, key: int = 0, progress: bool = False) -> dict:
    """Run the reduced model (:func:`collapsed_problem`) with ``method`` and ``key`` and compare it
    with the projected full run.

    Parameters
    ----------
    problem : MultilayerProblem
        the full problem (the one whose run produced ``projected``).
    method : MultilayerSGD
        the full run's method (same key: same data, same particles).
    times : array of float
        the full run's save times.
    projected : dict
        ``name -> (time, replica, *shape)``: the ``collapse/<name>`` saves of the full run
        (:func:`collapse_observer`), without the prefix.
    key : int
        the full run's key.
    progress : bool
        show the solver's progress bar.

    Returns
    -------
    dict
        ``sup`` / ``rms`` (replica,): ``trajectory_distance`` over the saves both runs reached;
        ``loss`` (time, replica): the reduced model's test loss; ``result``.
    """
    from ..solvers import SaveAt, solve
    from .multilayer import trajectory_distance

    red = collapsed_problem(problem)
    sol = solve(red, method, SaveAt(times=times, observables=("loss", "params")), key=key, progress=progress, throw=False)
    k = min(len(sol.times), min((np.shape(v)[0] for v in projected.values()), default=0))
    R = method.replicas
    if k == 0:
        return {"sup": np.full(R, np.nan), "rms": np.full(R, np.nan), "loss": np.zeros((0, R)), "result": sol.result}
    ds = [trajectory_distance({n: np.asarray(v)[:k, r] for n, v in projected.items()},
                              {n: np.asarray(sol.ys[f"params/{n}"])[:k, r] for n in projected}) for r in range(R)]
    return {"sup": np.array([d["sup"] for d in ds]), "rms": np.array([d["rms"] for d in ds]),
            "loss": np.asarray(sol.ys["loss"], float), "result": sol.result}
