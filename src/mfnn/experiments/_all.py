"""Import every experiment module so that it registers itself (no hand-edited list).

Every module of ``mfnn.experiments`` whose name does not start with an underscore, except the
framework modules ``base``, ``config``, ``runner`` and ``plots``, is imported; adding
``experiments/<name>.py`` with a ``@register`` class is all it takes to appear in ``mfnn list``.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import __name__ as _package
from . import __path__ as _path

_SKIP = {"base", "config", "runner", "plots"}

MODULES = []
for _info in sorted(pkgutil.iter_modules(_path), key=lambda m: m.name):
    if _info.name.startswith("_") or _info.name in _SKIP:
        continue
    MODULES.append(importlib.import_module(f"{_package}.{_info.name}"))
