"""Cooperative interruption: SIGINT / SIGTERM set a flag that long computations poll.

Raising ``KeyboardInterrupt`` in the middle of a JAX dispatch can leave XLA's threads running
while the interpreter unwinds (seen as segmentation faults at exit).  Inside
``cooperative()`` the handlers only record the signal; the solver driver checks
``stop_requested()`` at every block boundary and stops cleanly with result "interrupted".
"""

from __future__ import annotations

import contextlib
import signal
import threading

_requested: list[int] = []


def stop_requested() -> int | None:
    """The number of the first signal received inside ``cooperative()``, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    _requested.clear()


def _record(signum, frame):  # noqa: ARG001 - signal handler signature
    _requested.append(signum)


@contextlib.contextmanager
def cooperative(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the given signals set the stop flag instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _record) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
