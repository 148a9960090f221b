"""Compiled loops (Numba) for the CPU kernels that NumPy runs in many passes.

Where Numba imports, :func:`loops` gives the module of loops
(:mod:`daskmag.kernels._numba`) and the NumPy paths of those kernels call
them: the arctangent of the phase increments, Burg's fit and forecast at
the clip's ends, the rotation of the coefficients, luminance and the
change added back, the bands' weights, and the conversions to and from
float16 storage.  Elsewhere (no Numba, ``DASKMAG_COMPILED=0`` in the
environment, inside :func:`disabled`) the kernels keep their NumPy code,
as they do for CuPy and other array libraries; both paths are held to the
same references by the tests.

Numba is imported on first use, so a run that needs no such kernel does not
pay its import (about 0.2 s), and each loop is compiled once per machine:
its machine code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

_lock = threading.Lock()
_state: dict = {}


def loops():
    """The module of compiled loops, or None where Numba is missing or switched off."""
    if _state.get("off"):
        return None
    try:
        return _state["loops"]
    except KeyError:
        pass
    with _lock:
        if "loops" not in _state:
            module = None
            if os.environ.get("DASKMAG_COMPILED", "1") != "0":
                try:
                    from . import _numba as module
                except ImportError:  # no Numba (or none for this Python): the NumPy paths
                    module = None
                except RuntimeError as error:  # Numba found no writable cache folder
                    warnings.warn(f"daskmag: compiled kernels off ({error}); set NUMBA_CACHE_DIR "
                                  "to a writable folder to use them", RuntimeWarning, stacklevel=2)
                    module = None
            _state["loops"] = module
    return _state["loops"]


@contextlib.contextmanager
def disabled():
    """Run the NumPy paths inside this block (for comparisons and benchmarks)."""
    before = _state.get("off", False)
    _state["off"] = True
    try:
        yield
    finally:
        _state["off"] = before
