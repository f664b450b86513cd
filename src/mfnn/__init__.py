"""mfnn: the mean-field theory of neural-network training, computable.

``import mfnn`` changes no global JAX setting.  Every solver runs in float64 through
``mfnn.solve`` (which enters ``jax.enable_x64`` for the duration of the call), and the experiment
runner does the same for a whole run.  Code that evaluates population terms or activations
directly, outside ``solve``, gets float64 after an explicit ``mfnn.enable_x64()``.

The package namespace is loaded lazily (PEP 562): ``import mfnn`` is cheap, and the command line
installs its signal handlers before JAX is imported, so a Ctrl-C during start-up ends cleanly.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# the public namespace: every name in these subpackages' ``__all__``, plus the subpackages
_FLAT = ("problem", "solvers", "numerics", "errors")
_SUBPACKAGES = ("analysis", "errors", "experiments", "io", "kernel", "numerics", "problem", "solvers")


def enable_x64(enable: bool = True) -> None:
    """Switch JAX's float64 on (or off) for the whole process: an explicit, documented choice
    (``solve`` and the experiment runner need no call; direct evaluations of population terms do)."""
    import jax

    jax.config.update("jax_enable_x64", bool(enable))


def _exports() -> dict:
    out = {}
    for sub in _FLAT:
        mod = importlib.import_module(f"{__name__}.{sub}")
        for name in getattr(mod, "__all__", ()):
            out.setdefault(name, mod)
    return out


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "__all__":
        return sorted(_exports()) + ["enable_x64", "__version__"]
    if not name.startswith("__"):
        mod = _exports().get(name)
        if mod is not None:
            value = globals()[name] = getattr(mod, name)  # resolved once
            return value
    raise AttributeError(f"module 'mfnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_exports()) | set(_SUBPACKAGES))
