"""Exact blocked SGD for projection units (placeholder: no fast path yet)."""


def make_blocked_advance(problem, config, key):
    """Return ``advance(theta, k0, n)`` or None when the fast path does not apply."""
    return None
