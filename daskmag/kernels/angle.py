"""Four-quadrant arctangent of float32 arrays, and the angle of a complex product.

Every phase method spends a large share of its time on ``atan2``: one per
coefficient and frame (:func:`daskmag.kernels.phase.phase_increments`,
:func:`daskmag.kernels.riesz.quaternion_increments`).  NumPy vectorises its
float32 ``arctan2`` only on AVX-512 machines; elsewhere each element is a
call of the C library's ``atan2f``: here (AMD EPYC, AVX2) 24-30 ns on
random angles, 13-15 ns on the small angles of most phase steps.  The NumPy
path of :func:`atan2` evaluates the arctangent as a polynomial instead, with
ufuncs that NumPy does vectorise, on blocks of :data:`BLOCK` elements
(scratch reused between calls, not whole-array temporaries): 6-10 ns per
element on one thread, about 11 with two, within 4e-7 rad of the exact
value (NumPy's own float32 ``arctan2`` is within 2.5e-7).  Where Numba is
available (:mod:`daskmag.kernels.compiled`), the same polynomial runs as one
compiled loop, product and all, at 1.2-1.3 ns per element.  CuPy (and any
other array library) keeps its own ``atan2``.

Method: the usual octant reduction (Abramowitz & Stegun 4.4.5-4.4.8)
``atan2(y, x)`` from ``atan(t)``, ``t = min(|x|, |y|) / max(|x|, |y|)`` in
``[0, 1]``, then ``pi/2 - a`` where ``|y| > |x|``, ``pi - a`` where ``x`` is
negative (its sign bit, so that ``-0.0`` counts, as in C's ``atan2``) and the
sign of ``y``.  The reflections are sign copies, not masked assignments (a
masked ufunc is not vectorised: 5-6 ns per element).  ``atan(t) / t`` is a
degree-7 polynomial in ``t**2``, fitted by iteratively reweighted least
squares towards the minimax polynomial on ``[0, 1]`` (float64 error 3.8e-8;
``tests/kernels/test_angle.py`` checks it against NumPy).
"""

from __future__ import annotations

import threading

import numpy as np

from .backend import into, is_numpy, namespace
from .compiled import loops

#: ``atan(t) / t ~ sum(c[k] * t**(2k))`` on ``[0, 1]`` (near-minimax, error 3.8e-8 rad in float64).
ATAN_COEFFICIENTS = (0.9999993356, -0.3332986084, 0.1994656598, -0.139086303,
                     0.09642197755, -0.05591231836, 0.02186294487, -0.004054562124)
#: Elements per block of the NumPy path.  Each of the ~30 ufunc calls per
#: block hands the GIL to another worker thread and takes it back, so blocks
#: small enough for L2 lose to the handovers: two threads at once, 42 ns per
#: element at 8192, 20 at 32768, 11 at 131072, 14 at 262144 (one thread
#: alone: 13-19, 10, 9, 8.6 ns).  Scratch per thread: 3.5 MiB for
#: :func:`product_angle`, 1.5 MiB more for :func:`atan2`.
BLOCK = 2**17

_COEFFICIENTS = tuple(np.float32(c) for c in ATAN_COEFFICIENTS)
_HALF_PI = np.float32(np.pi / 2)
_QUARTER_PI = np.float32(np.pi / 4)
_scratch = threading.local()


def _buffers(count: int, dtype) -> list:
    """This thread's ``count`` block-sized scratch arrays of ``dtype`` (reused between calls).

    Not :func:`daskmag.kernels.backend.scratch_arrays`: its arrays last only
    until the thread's next call, and the kernels calling this hold theirs.
    """
    key = (count, np.dtype(dtype).str)
    held = getattr(_scratch, "held", None)
    if held is None:
        held = _scratch.held = {}
    if key not in held:
        held[key] = [np.empty(BLOCK, dtype=dtype) for _ in range(count)]
    return held[key]


def _atan2_block(y, x, out, a, b, s):
    """``atan2(y, x)`` of one contiguous float32 block into ``out``; ``a, b, s`` scratch of its length."""
    np.abs(x, out=a)
    np.abs(y, out=s)
    np.minimum(a, s, out=b)
    np.maximum(a, s, out=out)
    np.subtract(a, s, out=a)  # |x| - |y|: negative in the octants nearer the y axis
    np.divide(b, out, out=b)  # t in [0, 1]
    np.fmax(b, 0, out=b)  # 0 / 0 is NaN: t = 0, as C's atan2(0, 0) is 0
    np.square(b, out=s)
    coefficients = _COEFFICIENTS
    np.multiply(s, coefficients[-1], out=out)
    out += coefficients[-2]
    for c in coefficients[-3::-1]:
        out *= s
        out += c
    out *= b  # atan(t), in [0, pi/4]
    # a -> a or pi/2 - a by the sign of |x| - |y|: pi/4 -+ (pi/4 - a)
    np.subtract(_QUARTER_PI, out, out=out)
    np.copysign(out, a, out=out)
    np.subtract(_QUARTER_PI, out, out=out)
    # a -> a or pi - a by the sign of x: pi/2 -+ (pi/2 - a)
    np.subtract(_HALF_PI, out, out=out)
    np.copysign(out, x, out=out)
    np.subtract(_HALF_PI, out, out=out)
    np.copysign(out, y, out=out)
    return out


def _plain(dtype, *arrays) -> bool:
    """Whether every array is a plain C-contiguous NumPy array of ``dtype`` (no subclass)."""
    return all(type(v) is np.ndarray and v.dtype == dtype and v.flags.c_contiguous for v in arrays)


def atan2(y, x, out=None):
    """Four-quadrant arctangent ``atan2(y, x)``, elementwise.

    Parameters
    ----------
    y, x : float arrays of one shape
        NumPy, CuPy or any array API library.
    out : float array of that shape, optional
        Where to write the result (allocated if not given).

    Returns
    -------
    float array
        Radians in ``[-pi, pi]``, with C's signs for zeros (``atan2(+-0, -1)``
        is ``+-pi``).  For contiguous float32 NumPy arrays, the polynomial of
        this module (within 4e-7 rad, subnormal inputs included; a pair of
        zeros gives 0, two infinities +-pi/2 where C gives an odd multiple
        of pi/4, and a NaN input an angle, not NaN: video frames hold no NaN
        or infinity, and one such pixel would spoil every coefficient
        anyway); otherwise the library's own ``atan2``.  ``out`` may be one
        of the inputs.
    """
    xp = namespace(y)
    if out is None:
        out = xp.empty(y.shape, dtype=y.dtype)
    if not (_plain(np.float32, y, x, out) and y.shape == x.shape == out.shape):
        return into(out, "atan2", y, x)
    if np.may_share_memory(out, y) or np.may_share_memory(out, x):
        # a block writes its output before it has read its inputs for the last time
        out[...] = atan2(np.array(y), np.array(x))
        return out
    yf, xf, of = y.reshape(-1), x.reshape(-1), out.reshape(-1)
    compiled = loops()
    if compiled is not None:  # the same polynomial in one pass (about 1 ns per element)
        compiled.atan2(yf, xf, of)
        return out
    a, b, s = _buffers(3, np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        for i in range(0, of.size, BLOCK):
            j = min(of.size, i + BLOCK)
            n = j - i
            _atan2_block(yf[i:j], xf[i:j], of[i:j], a[:n], b[:n], s[:n])
    return out


def product_angle(current, previous, out=None):
    """``angle(current * conj(previous))``, elementwise, without full-size temporaries.

    Parameters
    ----------
    current, previous : complex arrays of one shape
    out : float array of that shape, optional
        Where to write the result (any float dtype and layout, e.g. float16
        storage; allocated as float32 if not given).

    Returns
    -------
    float array
        ``out``: radians in ``[-pi, pi]``.  For contiguous complex64 NumPy
        arrays, the product, its parts and their :func:`atan2` are taken
        block by block in cache (into a float32 copy where ``out`` is not a
        contiguous float32 array of its own); otherwise with the library's
        own ufuncs.
    """
    xp = namespace(current)
    if out is None:
        out = xp.empty(current.shape, dtype=xp.float32)
    native = (is_numpy(xp) and _plain(np.complex64, current, previous) and current.shape == previous.shape)
    compiled = loops() if native else None
    if compiled is not None and out.shape == current.shape and type(out) is np.ndarray and out.flags.c_contiguous \
            and out.dtype.kind == "f" and not (np.may_share_memory(out, current)
                                               or np.may_share_memory(out, previous)):
        cf, pf, of = current.reshape(-1), previous.reshape(-1), out.reshape(-1)
        if out.dtype == np.float32:
            compiled.product_angle(cf, pf, of)
            return out
        # other storage (float16 increments): through a block of float32 in
        # cache, then converted on the half's bits.  Two passes beat one here:
        # a fused loop streamed its inputs from memory at about half the rate
        # (4.4 against 2.5 ns an element on 1080p bands, docs/benchmarks.md)
        (angles,) = _buffers(1, np.float32)
        half = of.view(np.uint16) if out.dtype == np.float16 else None
        for i in range(0, of.size, BLOCK):
            j = min(of.size, i + BLOCK)
            compiled.product_angle(cf[i:j], pf[i:j], angles[: j - i])
            if half is not None:
                compiled.single_to_half(angles[: j - i], half[i:j])
            else:
                of[i:j] = angles[: j - i]
        return out
    if native and not (_plain(np.float32, out) and out.shape == current.shape
                       and not (np.may_share_memory(out, current) or np.may_share_memory(out, previous))):
        out[...] = product_angle(current, previous)
        return out
    if not native:
        product = xp.conj(previous)
        product *= current
        return into(out, "atan2", xp.imag(product), xp.real(product))
    cf, pf, of = current.reshape(-1), previous.reshape(-1), out.reshape(-1)
    (product,) = _buffers(1, np.complex64)
    real, imag, a, b, s = _buffers(5, np.float32)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        for i in range(0, of.size, BLOCK):
            j = min(of.size, i + BLOCK)
            n = j - i
            p = product[:n]
            np.conjugate(pf[i:j], out=p)
            p *= cf[i:j]
            # the parts of a complex array are strided: contiguous copies let the ufuncs vectorise
            np.copyto(real[:n], p.real)
            np.copyto(imag[:n], p.imag)
            _atan2_block(imag[:n], real[:n], of[i:j], a[:n], b[:n], s[:n])
    return out
