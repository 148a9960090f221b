"""Public names of a package loaded from its submodules on first use (PEP 562)."""

from __future__ import annotations


def lazy_attributes(package: str, table: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for ``package``: name -> submodule (relative, without the dot).

    Each name is imported on first access and then stored in the package's
    namespace, so later look-ups are plain attribute reads.
    """
    import sys

    def __getattr__(name):
        try:
            module = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        import importlib

        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
