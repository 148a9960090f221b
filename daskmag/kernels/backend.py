"""Array-backend dispatch: NumPy on the CPU, CuPy on the GPU.

Kernels take whatever array they are given and use :func:`array_module` and
:func:`fft_module` to pick the matching namespace, as dask-image does, so the
same kernel runs on a NumPy block or a CuPy block.
"""

from __future__ import annotations

import importlib
import math
import threading
import types
import weakref

import numpy as _numpy


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
    module = type(array).__module__
    if module.startswith("cupy"):
        return importlib.import_module("cupy")
    return _numpy


def fft_module(array) -> types.ModuleType:
    """Return the FFT namespace matching ``array`` (``scipy.fft`` or ``cupyx.scipy.fft``)."""
    if array_module(array).__name__ == "cupy":
        return importlib.import_module("cupyx.scipy.fft")
    return _scipy_fft()


def _scipy_fft():
    global _SCIPY_FFT
    if _SCIPY_FFT is None:
        _SCIPY_FFT = importlib.import_module("scipy.fft")
    return _SCIPY_FFT


_SCIPY_FFT = None


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


class _Scratch:
    """One thread's reusable working memory (see :func:`scratch_arrays`)."""

    __slots__ = ("buffer", "__weakref__")

    def __init__(self):
        self.buffer = None


_thread_scratch = threading.local()
_all_scratch: weakref.WeakSet = weakref.WeakSet()
_ALIGN = 64


def scratch_arrays(xp, specs):
    """Uninitialised arrays carved from this thread's reusable working memory.

    A kernel that allocates hundreds of MiB per call pays for fresh pages
    every time: glibc serves allocations over 64 MiB made by any thread but
    the main one with ``mmap`` whatever the malloc settings, and the kernel
    must zero each page on first touch (measured: 12% of all CPU time of a
    2-worker run, and a sixth of the kernel's time).  Reusing one buffer per
    thread avoids that.  The buffer grows to the largest request and is kept
    until the thread ends or :func:`release_scratch` is called, so a call's
    arrays are valid only until the same thread's next call.  CuPy has its
    own memory pool: there the arrays are plain allocations.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    specs : sequence of (shape, dtype)

    Returns
    -------
    list of arrays
    """
    sizes = [int(math.prod(shape)) * xp.dtype(dtype).itemsize for shape, dtype in specs]
    if xp.__name__ != "numpy":
        return [xp.empty(shape, dtype=dtype) for shape, dtype in specs]
    offsets, total = [], 0
    for size in sizes:
        offsets.append(total)
        total += -(-size // _ALIGN) * _ALIGN
    holder = getattr(_thread_scratch, "holder", None)
    if holder is None:
        holder = _thread_scratch.holder = _Scratch()
        _all_scratch.add(holder)
    if holder.buffer is None or holder.buffer.size < total:
        holder.buffer = None  # free the old one before taking the larger one
        holder.buffer = xp.empty(max(total, 1) + _ALIGN, dtype=xp.uint8)
    base = -holder.buffer.ctypes.data % _ALIGN
    return [holder.buffer[base + offset : base + offset + size].view(xp.dtype(dtype)).reshape(shape)
            for offset, size, (shape, dtype) in zip(offsets, sizes, specs)]


def release_scratch():
    """Free every thread's working memory kept by :func:`scratch_arrays`."""
    for holder in list(_all_scratch):
        holder.buffer = None
