"""Mean-field multilayer networks (Nguyen–Pham 2020): gradients, forward pass, the depth-2 = PNAS
equivalence, prefix coupling, freezing, dtypes and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mfnn
from mfnn.errors import ConfigError
from mfnn.problem import (CorrelatedEmbedding, GaussianInit, IIDEmbedding, IsotropicGaussians, MultilayerNetwork,
                          MultilayerProblem, Problem, ProjectionUnit, TeacherNetwork, from_two_layer, multilayer)
from mfnn.solvers import MultilayerSGD, OnlineSGD


def _setup(loss="squared", dtype=jnp.float64):
    net = MultilayerNetwork(d=3, widths=(4, 5, 6), activations=("tanh", "sigmoid", "erf", "tanh"),
                            biases=(1, 2, 4), loss=loss, huber_delta=0.3)
    params = IIDEmbedding(bias_mean=0.3).sample(jax.random.PRNGKey(1), net, dtype)
    x = jax.random.normal(jax.random.PRNGKey(2), (7, 3), dtype)
    y = jax.random.normal(jax.random.PRNGKey(3), (7,), dtype)
    return net, params, x, y


@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_update_is_width_scaled_autodiff_gradient_and_matches_finite_differences(loss):
    with jax.enable_x64(True):
        net, params, x, y = _setup(loss)
        g = net.mf_grads(params, x, y)
        auto = jax.grad(net.empirical_loss)(params, x, y)
        assert set(g) == set(params)
        for name in params:
            # Grad_i = n_{i-1} n_i dl/dw_i (n_0 = n_L = 1): float64 round-off only
            np.testing.assert_allclose(g[name], net.lr_factor(name) * auto[name], rtol=1e-10, atol=1e-13)
        assert net.lr_factor("w2") == 4 * 5 and net.lr_factor("w1") == 4 and net.lr_factor("w4") == 6
        # central differences, step h: error O(h^2) ~ 1e-10 relative to O(1) entries
        h = 1e-5
        loss = jax.jit(net.empirical_loss)
        for name in params:
            flat = np.asarray(params[name]).ravel()
            for idx in range(0, flat.size, max(1, flat.size // 4)):
                def at(v):
                    p = dict(params)
                    f = flat.copy()
                    f[idx] = v
                    p[name] = jnp.asarray(f.reshape(np.shape(params[name])))
                    return float(loss(p, x, y))
                fd = (at(flat[idx] + h) - at(flat[idx] - h)) / (2 * h)
                assert abs(fd - np.asarray(auto[name]).ravel()[idx]) < 1e-8, (name, idx)


def test_forward_matches_numpy():
    with jax.enable_x64(True):
        net, params, x, y = _setup()
        p = {k: np.asarray(v) for k, v in params.items()}
        xn = np.asarray(x)
        from scipy.special import erf, expit
        H1 = xn @ p["w1"] + p["b1"]
        H2 = np.tanh(H1) @ p["w2"] / 4 + p["b2"]
        H3 = expit(H2) @ p["w3"] / 5
        H4 = erf(H3) @ p["w4"] / 6 + p["b4"]
        Hs, HL = net.hidden(params, x)
        for a, b in zip(Hs, (H1, H2, H3)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.predict(params, x), np.tanh(H4), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.empirical_loss(params, x, y), np.mean((np.tanh(H4) - np.asarray(y)) ** 2),
                                   rtol=1e-12)


def test_depth2_reproduces_the_pnas_online_sgd_step_for_step():
    """A PNAS two-layer problem in multilayer form (w_1 = w, w_2 = a) follows OnlineSGD exactly:
    same initial draw, same samples (fold_in(data key, k)), same update (float64 round-off)."""
    problem = Problem(ProjectionUnit("tanh", trained=("a", "w")), IsotropicGaussians(d=5, delta=0.5),
                      GaussianInit(kappa=1.0, a_std=0.5))
    times = [0.0, 0.05, 0.1]
    ref = mfnn.solve(problem, OnlineSGD(n_neurons=16, eps=0.005, batch_size=3, replicas=2, engine="generic"),
                     mfnn.SaveAt(times=times, observables=("params",)), key=7)
    mp, xi = from_two_layer(problem, 16)
    assert mp.net.depth == 2 and xi == (1.0, 1.0)
    sol = mfnn.solve(mp, MultilayerSGD(eps=0.005, batch_size=3, replicas=2, xi=xi),
                     mfnn.SaveAt(times=times, observables=("params", "loss")), key=7)
    w_ref, a_ref = ref.ys["params/w"], ref.ys["params/a"]
    assert np.max(np.abs(w_ref[-1] - w_ref[0])) > 1e-3  # the weights moved
    np.testing.assert_allclose(np.swapaxes(sol.ys["params/w1"], -1, -2), w_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sol.ys["params/w2"], a_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("emb", [
    IIDEmbedding(bias_mean=0.5),
    # compile-bound (~15-40 s under load): slow tier
    pytest.param(CorrelatedEmbedding(label_dim=4), marks=pytest.mark.slow),
    pytest.param(CorrelatedEmbedding(label_dim=3, g=lambda U, V, i: jnp.cos(U @ V.T) + i), marks=pytest.mark.slow)])
def test_prefix_coupling_is_exact(emb):
    with jax.enable_x64(True):
        small = MultilayerNetwork(d=3, widths=(5, 6, 7), biases=(1, 3))
        big = MultilayerNetwork(d=3, widths=(10, 12, 14), biases=(1, 3))
        key = jax.random.PRNGKey(11)
        sample = eqx.filter_jit(emb.sample)
        ps, pb = sample(key, small), sample(key, big)
        assert np.asarray(pb["w2"]).shape == (10, 12)
        for name, v in ps.items():
            blk = tuple(slice(0, s) for s in np.shape(v))
            np.testing.assert_array_equal(np.asarray(pb[name])[blk], np.asarray(v), err_msg=name)
        assert np.std(np.asarray(pb["w2"])) > 0.05  # not a degenerate constant draw


def test_full_batch_gd_decreases_the_loss_float32_close_to_float64_and_freezing():
    net = multilayer(d=4, depth=3, width=32, biases=(1,))
    prob = MultilayerProblem(net, TeacherNetwork.random(d=4, units=3, noise=0.0), IIDEmbedding(bias_mean=0.5))
    saves = mfnn.SaveAt(times=[0.0, 2.0], observables=("loss", "train_loss", "params"))
    sols = {dt: mfnn.solve(prob, MultilayerSGD(eps=0.05, full_batch=True, n_train=128, n_test=128, xi=(1.0, 1.0, 0.0),
                                               dtype=dt), saves, key=1) for dt in ("float32", "float64")}
    s64 = sols["float64"]
    assert s64.train_loss[-1, 0] < 0.8 * s64.train_loss[0, 0]
    # float32 round-off accumulates over 40 steps: agreement to ~1e-4 relative
    np.testing.assert_allclose(sols["float32"].train_loss, s64.train_loss, rtol=1e-3)
    np.testing.assert_array_equal(s64.ys["params/w3"][-1], s64.ys["params/w3"][0])  # xi_3 = 0: frozen
    assert np.max(np.abs(s64.ys["params/w2"][-1] - s64.ys["params/w2"][0])) > 1e-3


def test_bad_input_names_the_field():
    cases = [
        (lambda: multilayer(d=3, depth=1, width=8), "depth"),
        (lambda: MultilayerNetwork(d=3, widths=()), "widths"),
        (lambda: MultilayerNetwork(d=3, widths=(8, 0)), "widths"),
        (lambda: MultilayerNetwork(d=3, widths=(8, -2)), "widths"),
        (lambda: MultilayerNetwork(d=3, widths=(8,), activations="swish"), "activations[0]"),
        (lambda: MultilayerNetwork(d=3, widths=(8,), activations=("tanh",)), "activations"),
        (lambda: MultilayerNetwork(d=3, widths=(8,), loss="l1"), "loss"),
        (lambda: MultilayerNetwork(d=3, widths=(8,), biases=(3,)), "biases"),
        (lambda: MultilayerSGD(eps=-1.0), "eps"),
        (lambda: MultilayerProblem(multilayer(d=3, depth=3, width=4), TeacherNetwork.random(d=4), IIDEmbedding()), "net.d"),
    ]
    for make, field in cases:
        with pytest.raises(ConfigError) as e:
            make()
        assert e.value.field == field, (field, str(e.value))
    prob = MultilayerProblem(multilayer(d=3, depth=3, width=4), TeacherNetwork.random(d=3), IIDEmbedding())
    with pytest.raises(ConfigError) as e:
        mfnn.solve(prob, MultilayerSGD(xi=(1.0, 1.0)), [0.0, 0.1])
    assert e.value.field == "xi" and "L = 3" in str(e.value)


@pytest.mark.slow  # 8-20 s
def test_digits_task_minibatch():
    pytest.importorskip("sklearn", reason="the digits task needs the optional 'data' extra (scikit-learn)")
    from mfnn.problem import digits_task

    task = digits_task(n=300)
    assert task.d == 64 and task.size == 300 and set(np.unique(task.y)) == {-1.0, 1.0}
    prob = MultilayerProblem(multilayer(d=64, depth=3, width=32, biases=(1,)), task, IIDEmbedding(bias_mean=0.5))
    sol = mfnn.solve(prob, MultilayerSGD(eps=0.05, batch_size=16), [0.0, 3.0], key=0)
    assert sol.loss[-1, 0] < sol.loss[0, 0]
