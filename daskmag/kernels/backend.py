"""Array-backend dispatch: NumPy on the CPU, CuPy on the GPU.

Kernels take whatever array they are given and pick the matching namespace,
as dask-image does, so the same kernel runs on a NumPy block or a CuPy block:

- :func:`namespace`: the array API standard's namespace (NumPy itself, or
  ``array_api_compat``'s wrapper of CuPy or any other library).  The motion
  kernels are written against it, so the code a GPU runs is the code the CPU
  tests run on ``array_api_strict`` arrays (``tests/kernels/test_array_api.py``).
- the few spots the standard does not cover, kept here: the FFT module
  (:func:`fft_module`, with SciPy's sizes and in-place options), writing a
  result into a given array (:func:`into`), casting on assignment
  (:func:`assignable`), column sums of products (:func:`column_dot`), the
  device a cache is keyed by (:func:`device_key`), ``scipy.ndimage``
  (:func:`ndimage_module`) and scratch memory (:func:`scratch_arrays`).
- :func:`array_module`: the library's own module (``numpy`` or ``cupy``),
  where a kernel has a path tuned for NumPy.
"""

from __future__ import annotations

import importlib
import math
import os
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


def _native_module(array):
    """``numpy`` or ``cupy`` for their own arrays, else None."""
    if isinstance(array, _numpy.ndarray):
        return _numpy
    if type(array).__module__.startswith("cupy"):
        return importlib.import_module("cupy")
    return None


def array_module(array) -> types.ModuleType:
    """Return ``numpy`` or ``cupy``, whichever owns ``array`` (``numpy`` for any other)."""
    return _native_module(array) or _numpy


def namespace(array):
    """The array API namespace of ``array``.

    NumPy arrays get ``numpy`` itself (NumPy 2 implements the standard in its
    main namespace, and its own extras stay at hand for tuned paths); any
    other array gets ``array_api_compat.array_namespace(array)``: CuPy's
    wrapper on a GPU, ``array_api_strict`` in the tests.

    Raises
    ------
    TypeError
        ``array`` is not an array of a library the standard covers.
    """
    if isinstance(array, (_numpy.ndarray, _numpy.generic)):
        return _numpy
    from array_api_compat import array_namespace  # only for non-NumPy arrays

    return array_namespace(array)


def is_numpy(xp) -> bool:
    """Whether the namespace ``xp`` is NumPy's (a CPU path tuned for it may run)."""
    return xp is _numpy


def fft_module(array):
    """The FFT functions for ``array``, with ``scipy.fft``'s signatures.

    ``scipy.fft`` for NumPy, ``cupyx.scipy.fft`` for CuPy (both with their
    fast sizes and in-place transforms), else the standard's ``fft``
    extension behind the same signatures (:class:`StandardFFT`).
    """
    if isinstance(array, (_numpy.ndarray, _numpy.generic)):
        return _numpy_fft()
    if array_module(array).__name__ == "cupy":
        return importlib.import_module("cupyx.scipy.fft")
    return StandardFFT(namespace(array))


class DuccFFT:
    """``scipy.fft`` with its 2-D transforms over the last two axes done by ``ducc0.fft``.

    ducc0 is the successor of the pocketfft that ``scipy.fft`` wraps, by the
    same author; on this project's band sizes its complex transforms take
    0.73-0.93x the time on one core (1080p bands), and it transforms real
    input (a frame) by a real FFT.  Everything else, and any call with
    other options, goes to ``scipy.fft``.  Results agree to float32 rounding
    (about 3e-7 of the largest value).

    M. Reinecke, ducc0 (https://gitlab.mpcdf.mpg.de/mtr/ducc).
    """

    def __init__(self, scipy_fft, ducc_fft):
        self._scipy, self._ducc = scipy_fft, ducc_fft

    def __getattr__(self, name):
        return getattr(self._scipy, name)

    def _direct(self, x, s, axes, norm, workers) -> bool:
        return (type(x) is _numpy.ndarray and x.ndim >= 2 and s is None and norm in (None, "backward")
                and workers is None and x.dtype in _DUCC_DTYPES
                and tuple(a % x.ndim for a in axes) == (x.ndim - 2, x.ndim - 1))

    def _c2c(self, x, forward: bool, overwrite_x: bool):
        if x.dtype.kind == "c":
            # in place (on a copy where ``x`` must be kept): ducc0 rounds its
            # in-place and out-of-place transforms differently, and a result
            # must not depend on whether the caller allowed scratch use
            out = x if overwrite_x and x.flags.writeable and x.flags.c_contiguous else x.copy()
            source = out
        else:  # real input: a real transform into a new complex array
            out = _numpy.empty(x.shape, dtype=_numpy.result_type(x.dtype, _numpy.complex64))
            source = x
        # one frame at a time: ducc0 vectorises across a batch of transforms,
        # so a frame's rounding would depend on the frames beside it (and a
        # clip's result on its time chunks); per frame it is as fast here
        inorm = 0 if forward else 2
        frames, outs = source.reshape((-1,) + x.shape[-2:]), out.reshape((-1,) + x.shape[-2:])
        for i in range(frames.shape[0]):
            self._ducc.c2c(frames[i], axes=(0, 1), forward=forward, inorm=inorm, out=outs[i], nthreads=1)
        return out

    def fft2(self, x, s=None, axes=(-2, -1), norm=None, overwrite_x=False, workers=None):
        if self._direct(x, s, axes, norm, workers):
            return self._c2c(x, True, overwrite_x)
        return self._scipy.fft2(x, s=s, axes=axes, norm=norm, overwrite_x=overwrite_x, workers=workers)

    def ifft2(self, x, s=None, axes=(-2, -1), norm=None, overwrite_x=False, workers=None):
        if self._direct(x, s, axes, norm, workers):
            return self._c2c(x, False, overwrite_x)
        return self._scipy.ifft2(x, s=s, axes=axes, norm=norm, overwrite_x=overwrite_x, workers=workers)


_DUCC_DTYPES = tuple(_numpy.dtype(t) for t in ("complex64", "complex128", "float32", "float64"))


def _smooth_length(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are 2, 3 and 5."""
    m = max(1, int(n))
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


class StandardFFT:
    """The array API standard's ``fft`` extension behind ``scipy.fft``'s signatures.

    ``overwrite_x`` is accepted and ignored (the standard has no in-place
    transforms); ``next_fast_len`` gives 5-smooth lengths.

    Parameters
    ----------
    xp : module
        An array API namespace with the ``fft`` extension.
    """

    def __init__(self, xp):
        self.xp = xp

    def _complex(self, x):
        # the standard's complex transforms take complex input only (SciPy's cast real input)
        xp = self.xp
        if xp.isdtype(x.dtype, "real floating"):
            return xp.astype(x, xp.complex128 if x.dtype == xp.float64 else xp.complex64)
        return x

    def fft2(self, x, overwrite_x=False):
        return self.xp.fft.fftn(self._complex(x), axes=(-2, -1))

    def ifft2(self, x, overwrite_x=False):
        return self.xp.fft.ifftn(self._complex(x), axes=(-2, -1))

    def fft(self, x, n=None, axis=-1, overwrite_x=False):
        return self.xp.fft.fft(self._complex(x), n=n, axis=axis)

    def ifft(self, x, n=None, axis=-1, overwrite_x=False):
        return self.xp.fft.ifft(self._complex(x), n=n, axis=axis)

    def rfft2(self, x, s=None, overwrite_x=False):
        return self.xp.fft.rfftn(x, s=s, axes=(-2, -1))

    def irfft2(self, x, s=None, overwrite_x=False):
        return self.xp.fft.irfftn(x, s=s, axes=(-2, -1))

    def rfft(self, x, n=None, axis=-1, overwrite_x=False):
        return self.xp.fft.rfft(x, n=n, axis=axis)

    def irfft(self, x, n=None, axis=-1, overwrite_x=False):
        return self.xp.fft.irfft(x, n=n, axis=axis)

    def fftshift(self, x, axes=None):
        return self.xp.fft.fftshift(x, axes=axes)

    def ifftshift(self, x, axes=None):
        return self.xp.fft.ifftshift(x, axes=axes)

    @staticmethod
    def next_fast_len(target, real=False):
        return _smooth_length(target)


#: The standard's names that CuPy's ufuncs spell otherwise (NumPy 2 has both).
_NATIVE_NAMES = {"atan2": "arctan2"}


def into(out, function: str, *args):
    """``out[...] = xp.<function>(*args)``, without a temporary where the library allows.

    NumPy's and CuPy's ufuncs write into ``out`` (casting as ufuncs do);
    elsewhere the result is computed, cast to ``out``'s dtype and copied.

    Parameters
    ----------
    out : array
    function : str
        The standard's name of an element-wise function (``"multiply"``, ``"atan2"``, ...).

    Returns
    -------
    ``out``
    """
    native = _native_module(out)
    if native is not None:
        getattr(native, _NATIVE_NAMES.get(function, function))(*args, out=out)
        return out
    xp = namespace(out)
    out[...] = xp.astype(getattr(xp, function)(*args), out.dtype, copy=False)
    return out


def assignable(value, out):
    """``value`` ready to assign into (a part of) ``out``.

    NumPy and CuPy cast on assignment; the standard asks for equal dtypes,
    so elsewhere ``value`` is cast to ``out``'s dtype first.
    """
    if _native_module(out) is not None or value.dtype == out.dtype:
        return value
    return namespace(out).astype(value, out.dtype)


def column_dot(a, b):
    """``sum(a * b, axis=0)`` of real (n, C) arrays: (C,).

    NumPy's ``einsum`` (its CPU path, unchanged); elsewhere the standard's ``vecdot``.
    """
    xp = namespace(a)
    if is_numpy(xp):
        return xp.einsum("ij,ij->j", a, b)
    return xp.vecdot(a, b, axis=-2)


def device_key(array):
    """A hashable name of the device ``array`` lives on (for per-device caches)."""
    native = _native_module(array)
    if native is _numpy:
        return ("numpy", None)
    if native is not None:
        return ("cupy", array.device.id)
    return (namespace(array).__name__, str(getattr(array, "device", None)))


def dtype_named(xp, name):
    """The dtype ``name`` (``"float32"``, ``"complex64"``, ...) of namespace ``xp``."""
    return getattr(xp, str(name))


def _scipy_fft():
    global _SCIPY_FFT
    if _SCIPY_FFT is None:
        _SCIPY_FFT = importlib.import_module("scipy.fft")
    return _SCIPY_FFT


def _numpy_fft():
    """:class:`DuccFFT` where ducc0 imports (and ``DASKMAG_DUCC`` is not ``0``), else ``scipy.fft``."""
    global _NUMPY_FFT
    if _NUMPY_FFT is None:
        module = _scipy_fft()
        if os.environ.get("DASKMAG_DUCC", "1") != "0":
            try:
                module = DuccFFT(module, importlib.import_module("ducc0.fft"))
            except ImportError:
                pass
        _NUMPY_FFT = module
    return _NUMPY_FFT


_SCIPY_FFT = None
_NUMPY_FFT = None


def ndimage_module(array) -> types.ModuleType:
    """Return ``scipy.ndimage`` or ``cupyx.scipy.ndimage``, whichever matches ``array``."""
    if array_module(array).__name__ == "cupy":
        return importlib.import_module("cupyx.scipy.ndimage")
    return importlib.import_module("scipy.ndimage")


def to_numpy(array):
    """Return ``array`` as a NumPy array (copying from the GPU if needed)."""
    if isinstance(array, _numpy.ndarray):
        return array
    if array_module(array).__name__ == "cupy":
        return array.get()
    return _numpy.from_dlpack(array)


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
        The arrays' namespace (:func:`namespace`).
    specs : sequence of (shape, dtype name)

    Returns
    -------
    list of arrays
    """
    if not is_numpy(xp):
        return [xp.empty(shape, dtype=dtype_named(xp, dtype)) for shape, dtype in specs]
    sizes = [int(math.prod(shape)) * xp.dtype(dtype).itemsize for shape, dtype in specs]
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
