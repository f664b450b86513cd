"""Generated invalid calls of the Python API: every constructor of the problem layer and of the
solver methods validates at construction and raises ``ConfigError`` naming the offending field
(wrong types, booleans where numbers belong, non-finite values, impossible sizes), and never
fails deep inside NumPy or JAX.  NumPy integer types are accepted where ints are."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mfnn

BAD_REAL = [float("nan"), float("inf"), -float("inf"), "1.0", None, True, [1.0], 1 + 1j]
BAD_INT = [2.5, True, "3", None, float("nan"), -5, 10**13, [3]]
BAD_POSITIVE = [0.0, -1.0]

# (constructor, valid keyword arguments, field -> (name in the error, kind))
CASES = [
    (mfnn.IsotropicGaussians, dict(d=5, delta=0.5),
     {"d": ("d", "int"), "delta": ("delta", "real01"), "n_hermite": ("n_hermite", "int"), "n_mc": ("n_mc", "int")}),
    (mfnn.AnisotropicGaussians, dict(d=5, s0=2, delta=0.5),
     {"d": ("d", "int"), "s0": ("s0", "int"), "delta": ("delta", "real01"), "n_hermite": ("n_hermite", "int")}),
    (mfnn.GaussianInit, dict(),
     {"kappa": ("init.kappa", "real0"), "a_mean": ("init.a_mean", "real"), "a_std": ("init.a_std", "real0"),
      "b_mean": ("init.b_mean", "real"), "b_std": ("init.b_std", "real0")}),
    (mfnn.ramp, dict(),
     {"t1": ("activation.t1", "real"), "t2": ("activation.t2", "real"), "s1": ("activation.s1", "real"),
      "s2": ("activation.s2", "real")}),
    (mfnn.PowerLaw, dict(), {"p": ("xi.p", "real"), "t0": ("xi.t0", "real+"), "scale": ("xi.scale", "real+")}),
    (mfnn.Constant, dict(), {"value": ("xi", "real+")}),
    (mfnn.OnlineSGD, dict(),
     {"n_neurons": ("n_neurons", "int+"), "eps": ("eps", "real+"), "batch_size": ("batch_size", "int+"),
      "lam": ("lam", "real"), "replicas": ("replicas", "int+")}),
    (mfnn.Problem, dict(unit=mfnn.sigma_w(), task=mfnn.IsotropicGaussians(d=3)), {"alpha": ("alpha", "real+")}),
    (mfnn.SphereInit, dict(), {"radius": ("init.radius", "real+?")}),  # None: sqrt of the dimension
    (mfnn.Sphere, dict(), {"radius": ("constraint.radius", "real+?")}),
]


def _generated():
    for ctor, base, fields in CASES:
        for field, (name, kind) in fields.items():
            if kind.startswith("int"):
                bad = BAD_INT + ([0] if kind == "int+" else [])
            else:
                bad = [v for v in BAD_REAL if not (v is None and kind.endswith("?"))]
                bad += BAD_POSITIVE if kind in ("real+", "real+?", "real01") else [-1.0] if kind == "real0" else []
                bad += [1.0, 1.5] if kind == "real01" else []
            for value in bad:
                yield pytest.param(ctor, base, field, value, name, id=f"{ctor.__name__}-{field}-{value!r}")


@pytest.mark.parametrize("ctor,base,field,value,name", list(_generated()))
def test_invalid_value_names_the_field(ctor, base, field, value, name):
    with pytest.raises(mfnn.ConfigError) as e:
        ctor(**{**base, field: value})
    assert e.value.field == name
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,name", [
    (dict(noise_convention="ito"), "noise_convention"), (dict(dtype="float16"), "dtype"),
    (dict(engine=3), "engine"), (dict(xi="bogus"), "xi"), (dict(xi=float("nan")), "xi"),
    (dict(beta=float("nan")), "beta"), (dict(beta=0.0), "beta"), (dict(beta=-1.0), "beta"),
])
def test_invalid_method_options(kwargs, name):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.OnlineSGD(**kwargs)
    assert e.value.field == name


@pytest.mark.parametrize("times", [[], [1.0, 0.5], [-1.0], [0.0, float("nan")], [0.0, float("inf")],
                                   ["a"], None, [[0.0, 1.0]]])
def test_invalid_save_times(times):
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.SaveAt(times=times)
    assert e.value.field == "saveat.times"


def test_step_counter_cannot_overflow():
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.OnlineSGD(eps=1e-300).save_steps((0.0, 1e30))
    assert e.value.field == "eps"


def test_solve_rejects_bad_arguments():
    problem = mfnn.Problem(mfnn.sigma_w(), mfnn.IsotropicGaussians(d=3))
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.solve(problem, "sgd", [0.0])
    assert e.value.field == "method"
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=4), [0.0], key=2**40)
    assert e.value.field == "key"
    with pytest.raises(mfnn.ConfigError) as e:
        mfnn.solve(problem, mfnn.OnlineSGD(n_neurons=4), mfnn.SaveAt(times=[0.0], observables=("entropy",)))
    assert e.value.field == "saveat.observables"


def test_numpy_integers_accepted():
    task = mfnn.IsotropicGaussians(d=np.int64(5), n_hermite=np.int32(8))
    method = mfnn.OnlineSGD(n_neurons=np.int64(10), replicas=np.int16(2))
    assert (task.d, task.n_hermite, method.n_neurons, method.replicas) == (5, 8, 10, 2)
    assert math.isinf(float(mfnn.OnlineSGD(beta=float("inf")).beta))  # inf documented for beta
