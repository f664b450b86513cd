"""Cooperative interruption: SIGINT / SIGTERM set a flag that long computations poll.

Raising ``KeyboardInterrupt`` in the middle of a JAX dispatch can leave XLA's threads running
while the interpreter unwinds (seen as segmentation faults at exit).  Inside
``cooperative()`` the handlers only record the signal; the solver driver checks
``stop_requested()`` at every block boundary and stops cleanly with result "interrupted", and
the experiment runner checks it between points and phases.  A *second* signal inside
``cooperative()`` raises ``RunInterrupted`` at once (the user insists; the CLI then ends the
process with ``os._exit`` so that no XLA teardown runs).

Outside ``cooperative()`` but inside ``handled()`` (the CLI installs it for a whole command),
SIGINT and SIGTERM raise ``RunInterrupted`` carrying the signal number, so start-up and
plotting are interruptible with one line and the right exit status (130 / 143) too.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from .errors import RunInterrupted

_requested: list[int] = []
_mode: list[str] = []  # stack of "raise" / "record"

SIGNAL_NAMES = {int(signal.SIGINT): "SIGINT", int(signal.SIGTERM): "SIGTERM"}


def signal_name(signum) -> str:
    return SIGNAL_NAMES.get(int(signum), f"signal {int(signum)}") if signum is not None else "KeyboardInterrupt"


def stop_requested() -> int | None:
    """The number of the first signal received inside ``cooperative()``, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    _requested.clear()


def _handler(signum, frame):  # noqa: ARG001 - signal handler signature
    _requested.append(signum)
    if not _mode or _mode[-1] == "raise" or len(_requested) > 1:
        raise RunInterrupted(f"interrupted by {signal_name(signum)}", signum=signum)


@contextlib.contextmanager
def _installed(mode: str, signals):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _mode.append(mode)
    old = {s: signal.signal(s, _handler) for s in signals}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _mode.pop()


def cooperative(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the given signals set the stop flag instead of raising (a second raises)."""
    return _installed("record", signals)


def handled(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the given signals raise ``RunInterrupted(signum=...)`` (SIGTERM included)."""
    return _installed("raise", signals)
