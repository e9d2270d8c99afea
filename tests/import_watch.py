"""Which modules this process imports, seen from the start of the session (conftest.py imports
this first): an import that a test then hides from ``sys.modules`` is still seen.

A finder first on ``sys.meta_path`` sees every module the import system looks for, by an
``import`` statement or by ``importlib.import_module`` (what Hydra's ``instantiate`` uses,
and which raises no ``import`` audit event); it only takes note and finds nothing itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_SEEN: list[str] = []


class _Watcher:
    """A meta path finder that notes each name looked for and leaves the finding to others."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        _SEEN.append(name)
        return None

    @staticmethod
    def invalidate_caches() -> None:
        return None


if not any(isinstance(f, _Watcher) for f in sys.meta_path):
    sys.meta_path.insert(0, _Watcher())


def mark() -> int:
    """A point in the import history, for :func:`imported_since`."""
    return len(_SEEN)


def imported_since(point: int, package: str) -> list[str]:
    """``package`` and its submodules, as first looked for since ``point``."""
    return [m for m in _SEEN[point:] if m == package or m.startswith(package + ".")]
