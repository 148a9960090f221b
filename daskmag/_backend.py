"""Array-backend dispatch: NumPy on the CPU, CuPy on the GPU.

Kernels take whatever array they are given and use :func:`array_module` and
:func:`fft_module` to pick the matching namespace, as dask-image does, so the
same kernel runs on a NumPy block or a CuPy block.
"""

from __future__ import annotations

import importlib
import types


def cupy_or_none() -> types.ModuleType | None:
    """Return the ``cupy`` module if it imports and a CUDA device is usable."""
    try:
        cupy = importlib.import_module("cupy")
    except Exception:  # ImportError, or a broken CUDA install
        return None
    try:
        if not cupy.cuda.is_available():
            return None
    except Exception:
        return None
    return cupy


def array_module(array) -> types.ModuleType:
    """Return ``numpy`` or ``cupy``, whichever owns ``array``."""
    module = type(array).__module__.split(".")[0]
    if module == "cupy":
        return importlib.import_module("cupy")
    return importlib.import_module("numpy")


def fft_module(array) -> types.ModuleType:
    """Return the FFT namespace matching ``array`` (``scipy.fft`` or ``cupyx.scipy.fft``)."""
    if array_module(array).__name__ == "cupy":
        return importlib.import_module("cupyx.scipy.fft")
    return importlib.import_module("scipy.fft")


def ndimage_module(array) -> types.ModuleType:
    """Return ``scipy.ndimage`` or ``cupyx.scipy.ndimage``, whichever matches ``array``."""
    if array_module(array).__name__ == "cupy":
        return importlib.import_module("cupyx.scipy.ndimage")
    return importlib.import_module("scipy.ndimage")


def to_numpy(array):
    """Return ``array`` as a NumPy array (copying from the GPU if needed)."""
    if array_module(array).__name__ == "cupy":
        return array.get()
    return array
