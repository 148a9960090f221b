"""Numba loops behind :mod:`daskmag.kernels.compiled` (imported only through it).

Each loop is the NumPy path of its kernel written out element by element,
so that one pass over memory replaces NumPy's many: the arctangent of
:mod:`daskmag.kernels.angle` (about 30 ufunc passes per block) and Burg's
fit and forecast of :mod:`daskmag.kernels.temporal` (about 200 small NumPy
calls per block of columns); and conversions NumPy runs without SIMD
(float16 storage).  Columns are the innermost loop wherever the
algorithm allows, so LLVM vectorises across them.  ``cache=True``: the
machine code is written next to this file (or in Numba's user cache) on
first use and loaded from there by later processes.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .angle import ATAN_COEFFICIENTS

# Each loop below is compiled for the argument types it meets, once per
# machine; with ``cache=True`` Numba raises RuntimeError at decoration where
# no cache folder is writable (in the package, or the user's cache), and
# :func:`daskmag.kernels.compiled.loops` then keeps the NumPy paths.

_C = tuple(np.float32(c) for c in ATAN_COEFFICIENTS)
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7 = _C
_HALF_PI = np.float32(np.pi / 2)
_QUARTER_PI = np.float32(np.pi / 4)
_ZERO = np.float32(0.0)

_jit = numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@numba.njit(inline="always", error_model="numpy")
def _atan2(y, x):
    """The octant reduction and polynomial of :func:`daskmag.kernels.angle._atan2_block`, for one float32 pair."""
    ax, ay = abs(x), abs(y)
    small, large = min(ax, ay), max(ax, ay)
    t = small / large if large > _ZERO else _ZERO
    s = t * t
    a = ((((((_C7 * s + _C6) * s + _C5) * s + _C4) * s + _C3) * s + _C2) * s + _C1) * s + _C0
    a *= t
    a = _QUARTER_PI - math.copysign(_QUARTER_PI - a, ax - ay)
    a = _HALF_PI - math.copysign(_HALF_PI - a, x)
    return math.copysign(a, y)


@_jit
def atan2(y, x, out):
    """``out[i] = atan2(y[i], x[i])`` over 1-D float32 arrays."""
    for i in range(out.shape[0]):
        out[i] = _atan2(y[i], x[i])
    return out


@_jit
def product_angle(current, previous, out):
    """``out[i] = angle(current[i] * conj(previous[i]))`` over 1-D complex64 arrays, into float32."""
    for i in range(out.shape[0]):
        c, p = current[i], previous[i]
        real = c.real * p.real + c.imag * p.imag
        imag = c.imag * p.real - c.real * p.imag
        out[i] = _atan2(imag, real)
    return out


# ---------------------------------------------------------------- float16 storage
# Numba has no float16 on the CPU and NumPy converts element by element
# without SIMD (1.7 ns a float32 to float16 here, 0.9 back): these loops
# work on the half's bits (uint16 views), bit for bit NumPy's conversions
# (npy_floatbits_to_halfbits and back: round to nearest even, subnormals,
# infinities, NaN payloads), checked over every float32 and every half.


@intrinsic
def _bits(typingctx, value):
    """The bits of a float32, as a non-negative int64."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))
    return types.int64(types.float32), codegen


@intrinsic
def _single(typingctx, bits):
    """The float32 whose bits are the low 32 of an int64."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
    return types.float32(types.int64), codegen


@numba.njit(inline="always", error_model="numpy")
def _half(x):
    """The IEEE half bits (uint16) of a float32, rounded to nearest even.

    Every case is computed and one selected (no branches), so that loops
    calling it vectorise."""
    f = _bits(x)
    sign = (f >> 16) & 0x8000
    a = f & 0x7FFFFFFF
    # normal halves: rebias the exponent; 0xfff plus the kept mantissa's last
    # bit rounds to nearest even (a carry into the exponent is right too)
    normal = (a - 0x37FFF001 + ((a >> 13) & 1)) >> 13
    # subnormal halves and zero: adding 0.5 aligns the mantissa at 2**-24 and
    # the float addition rounds it to nearest even
    subnormal = _bits(_single(a) + np.float32(0.5)) - 0x3F000000
    # NaN keeps its payload's top bits (and stays a NaN); beyond 65520: infinity
    payload = (a & 0x007FFFFF) >> 13
    special = 0x7C00 | (max(payload, 1) if a > 0x7F800000 else 0)
    h = subnormal if a < 0x38800000 else normal
    h = special if a >= 0x47800000 else h
    return np.uint16(sign | h)


@numba.njit(inline="always", error_model="numpy")
def _from_half(h):
    """The float32 of IEEE half bits (exact: every half is a float32); no branches."""
    u = np.int64(h)
    sign = (u & 0x8000) << 16
    o = (u & 0x7FFF) << 13
    exponent = o & 0x0F800000
    o += 0x38000000
    # infinity, NaN: the largest exponent; zero, subnormal: renormalised by a float subtraction
    special = o + 0x38000000
    subnormal = _bits(_single(o + 0x00800000) - np.float32(6.103515625e-05))
    o = special if exponent == 0x0F800000 else o
    o = subnormal if exponent == 0 else o
    return _single(o | sign)


@_jit
def single_to_half(values, out):
    """``out[i]`` = the half bits of ``values[i]``: 1-D float32 into uint16 (a float16 array's view)."""
    for i in range(out.shape[0]):
        out[i] = _half(values[i])
    return out


@_jit
def half_to_single(bits, out):
    """``out[i]`` = the float32 of ``bits[i]``: 1-D uint16 (a float16 array's view) into float32."""
    for i in range(out.shape[0]):
        out[i] = _from_half(bits[i])
    return out


@_jit
def burg_forecast(window, history, steps, order, out):
    """Fit an AR(``order``) model per column by Burg's method and forecast ``steps`` samples.

    ``window``: (n, C) float32, the samples the model is fitted to, oldest
    first; ``history``: (order, C) float32, the last ``order`` samples of the
    series (the forecast continues them); ``out``: (steps, C) float32.

    The arithmetic of :func:`daskmag.kernels.temporal._burg_from_correlations`
    (Vos's recursion from the autocorrelations, float64, reflection
    coefficients clipped to [-1, 1] and 0 once the residual is below 1e-10
    of the energy) and of :func:`daskmag.kernels.temporal._forecast_columns`
    (each column's mean removed first and added back; the forecast in float32).
    """
    n, width = window.shape
    x = np.empty((n, width), dtype=np.float64)
    mean = np.zeros(width, dtype=np.float32)
    for t in range(n):
        for j in range(width):
            mean[j] += window[t, j]
    for j in range(width):
        mean[j] /= np.float32(n)
    for t in range(n):
        for j in range(width):
            x[t, j] = window[t, j] - mean[j]
    c = np.zeros((order + 1, width), dtype=np.float64)
    for lag in range(order + 1):
        for t in range(n - lag):
            for j in range(width):
                c[lag, j] += x[t, j] * x[t + lag, j]
    a = np.zeros((order + 2, width), dtype=np.float64)
    g = np.zeros((order + 2, width), dtype=np.float64)
    r = np.zeros((order + 1, width), dtype=np.float64)
    k = np.empty(width, dtype=np.float64)
    first = np.empty(width, dtype=np.float64)
    last = np.empty(width, dtype=np.float64)
    floor = np.empty(width, dtype=np.float64)
    for j in range(width):
        a[0, j] = 1.0
        g[0, j] = 2.0 * c[0, j] - x[0, j] * x[0, j] - x[n - 1, j] * x[n - 1, j]
        g[1, j] = 2.0 * c[1, j]
        r[0, j] = 2.0 * c[1, j]
        floor[j] = 1e-10 * g[0, j]
    for i in range(order):
        for j in range(width):
            numerator = 0.0
            denominator = 0.0
            for q in range(i + 2):
                numerator += a[q, j] * g[i + 1 - q, j]
                denominator += a[q, j] * g[q, j]
            kj = -numerator / denominator if denominator > floor[j] else 0.0
            k[j] = min(1.0, max(-1.0, kj))
        # a[q] + k a[i + 1 - q], both ends of each pair at once
        for q in range((i + 2 + 1) // 2):
            p = i + 1 - q
            for j in range(width):
                u, v = a[q, j], a[p, j]
                a[q, j] = u + k[j] * v
                if p != q:
                    a[p, j] = v + k[j] * u
        if i == order - 1:
            break
        m = i + 1
        for p in range(m - 1, -1, -1):  # r[p + 1] from the old r[p]: downwards
            for j in range(width):
                r[p + 1, j] = r[p, j] - x[p, j] * x[m, j] - x[n - 1 - p, j] * x[n - 1 - m, j]
        for j in range(width):
            r[0, j] = 2.0 * c[m + 1, j]
            first[j] = 0.0
            last[j] = 0.0
        for p in range(m + 1):
            for j in range(width):
                first[j] += x[m - p, j] * a[p, j]
                last[j] += x[n - 1 - m + p, j] * a[p, j]
        for q in range((m + 1 + 1) // 2):
            p = m - q
            for j in range(width):
                u, v = g[q, j], g[p, j]
                g[q, j] = u + k[j] * v - x[m - q, j] * first[j] - x[n - 1 - m + q, j] * last[j]
                if p != q:
                    g[p, j] = v + k[j] * u - x[m - p, j] * first[j] - x[n - 1 - m + p, j] * last[j]
        for j in range(width):
            total = 0.0
            for p in range(m + 1):
                total += r[p, j] * a[p, j]
            g[m + 1, j] = total
    coefficients = np.empty((order, width), dtype=np.float32)
    for q in range(order):
        for j in range(width):
            coefficients[q, j] = np.float32(a[q + 1, j])
    series = np.empty((order + steps, width), dtype=np.float32)
    for q in range(order):
        for j in range(width):
            series[q, j] = history[q, j] - mean[j]
    for step in range(steps):
        row = step + order
        for j in range(width):
            series[row, j] = _ZERO
        for q in range(order):
            for j in range(width):
                series[row, j] -= coefficients[q, j] * series[row - 1 - q, j]
        for j in range(width):
            out[step, j] = series[row, j] + mean[j]
    return out


@_jit
def signed_luma(frames, weights, signs, out):
    """``out[t, i, j] = (sum_c frames[t, i, j, c] weights[c]) * signs[i, j]`` in float32.

    :func:`daskmag.kernels.colourspace.luma` and the checkerboard of
    :func:`daskmag.kernels.pyramid.centred_spectrum` in one pass.
    ``frames``: (T, H, W, C) unsigned integers, C 1 or 3.
    """
    n, height, width, channels = frames.shape
    if channels == 3:
        w0, w1, w2 = weights[0], weights[1], weights[2]
        for t in range(n):
            for i in range(height):
                for j in range(width):
                    y = (np.float32(frames[t, i, j, 0]) * w0 + np.float32(frames[t, i, j, 1]) * w1
                         + np.float32(frames[t, i, j, 2]) * w2)
                    out[t, i, j] = y * signs[i, j]
    else:
        w0 = weights[0]
        for t in range(n):
            for i in range(height):
                for j in range(width):
                    out[t, i, j] = (np.float32(frames[t, i, j, 0]) * w0) * signs[i, j]
    return out


@_jit
def add_signed_real(frames, change, signs, scale, out):
    """``out = clip(round(frames + real(change) * signs * scale))``, every channel alike.

    :func:`daskmag.kernels.pyramid.real_image` after its inverse transform
    and :func:`daskmag.kernels.colourspace.add_luma` in one pass, with their
    float32 operations in their order (round half to even, then clip to
    ``[0, scale]``).  ``frames``, ``out``: (T, H, W, C) unsigned integers;
    ``change``: (T, H, W) complex64.
    """
    n, height, width, channels = frames.shape
    top = scale
    for t in range(n):
        for i in range(height):
            for j in range(width):
                delta = (np.float32(change[t, i, j].real) * signs[i, j]) * scale
                for c in range(channels):
                    value = np.rint(np.float32(frames[t, i, j, c]) + delta)
                    out[t, i, j, c] = min(max(value, _ZERO), top)
    return out


# sin and cos on [-pi/4, pi/4] (Cephes' sinf and cosf, float32 minimax) after a
# three-part Cody-Waite reduction by multiples of pi/2
_TWO_OVER_PI = np.float32(2.0 / np.pi)
_PIO2_1 = np.float32(1.5703125)
_PIO2_2 = np.float32(4.837512969970703125e-4)
_PIO2_3 = np.float32(7.54978995489188216e-8)
_S1, _S2, _S3 = np.float32(-1.6666654611e-1), np.float32(8.3321608736e-3), np.float32(-1.9515295891e-4)
_K1, _K2, _K3 = np.float32(4.166664568298827e-2), np.float32(-1.388731625493765e-3), np.float32(2.443315711809948e-5)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


@_jit
def rotate(coefficients, shift, out):
    """``out[i] = c[i] * (exp(1j * shift[i]) - 1)``, with ``coefficients`` and ``out`` as float32
    views of complex64 arrays (real and imaginary parts interleaved, ``2 n`` long).

    Branch-free, so that LLVM vectorises it; ``cos - 1`` is taken without
    cancellation near 0 (``-x**2/2 + ...``).  Within 2 float32 rounding steps
    of the exact rotation for shifts up to thousands of radians.
    """
    for i in range(shift.shape[0]):
        theta = shift[i]
        k = np.rint(theta * _TWO_OVER_PI)
        x = ((theta - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
        z = x * x
        sine = x + x * z * (_S1 + z * (_S2 + z * _S3))
        minus_one = z * z * (_K1 + z * (_K2 + z * _K3)) - _HALF * z  # cos(x) - 1
        quadrant = np.int32(k)
        odd = (quadrant & 1) == 1
        sign = _ONE - np.float32(2.0) * np.float32((quadrant >> 1) & 1)
        s = sign * (minus_one + _ONE if odd else sine)
        cosine = sign * (-sine if odd else minus_one + _ONE)
        cm1 = minus_one if (quadrant & 3) == 0 else cosine - _ONE
        re, im = coefficients[2 * i], coefficients[2 * i + 1]
        out[2 * i] = re * cm1 - im * s
        out[2 * i + 1] = re * s + im * cm1
    return out


@_jit
def add_weighted(out, box, weights):
    """``out += box * weights`` for a complex64 ``out`` (T, h, w) (a view into a spectrum),
    complex64 ``box`` (T, h, w) and real float32 ``weights`` (h, w).

    Multiplying by a real weight is what NumPy's complex product by
    ``weights + 0j`` gives, bit for bit; one pass instead of two.
    """
    n, height, width = box.shape
    for t in range(n):
        for i in range(height):
            for j in range(width):
                out[t, i, j] += box[t, i, j] * weights[i, j]
    return out


@_jit
def multiply_weighted(out, box, weights):
    """``out = box * weights`` for complex64 ``box`` (T, h, w) (a view into a spectrum), real
    float32 ``weights`` (h, w) and a C-contiguous complex64 ``out`` (T, h, w).

    NumPy's product by ``weights + 0j`` gives the same values (the real
    weight's zero imaginary part adds exact zeros); half the multiplications.
    """
    n, height, width = box.shape
    for t in range(n):
        for i in range(height):
            for j in range(width):
                out[t, i, j] = box[t, i, j] * weights[i, j]
    return out
