"""Seconds JAX spends tracing, lowering and compiling (from ``jax.monitoring``), for benchmarks
that subtract compilation from wall time: ``reset()`` then ``seconds()`` after a call."""

import jax

_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_total = [0.0]


def _listener(event, duration, **_):
    if event in _EVENTS:
        _total[0] += duration


jax.monitoring.register_event_duration_secs_listener(_listener)


def reset() -> None:
    _total[0] = 0.0


def seconds() -> float:
    return _total[0]
