"""Module-level lazy exports (PEP 562): a public name imports its defining module on first access."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 defined: Callable[[], list[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, resolving each name in `exports` (name -> module) lazily.

    `defined` returns the names the package defines itself (its `globals()` keys).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(defined()) | set(exports))

    return __getattr__, __dir__
