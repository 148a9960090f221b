"""The polynomial atan2 and the angle of a product (compiled and NumPy paths), against NumPy in float64."""

import numpy as np
import pytest

from daskmag.kernels.angle import ATAN_COEFFICIENTS, BLOCK, atan2, product_angle

# every test on both paths: the compiled loop (Numba) and the NumPy ufuncs
pytestmark = pytest.mark.usefixtures("kernel_path")


def exact(y, x):
    return np.arctan2(np.asarray(y, np.float64), np.asarray(x, np.float64))


def test_the_polynomial_is_within_4e8_of_atan_on_0_1():
    t = np.linspace(0.0, 1.0, 1_000_001)
    approx = t * np.polynomial.polynomial.polyval(t * t, ATAN_COEFFICIENTS)
    assert np.abs(approx - np.arctan(t)).max() < 4e-8


@pytest.mark.parametrize("scale", [1.0, 1e-30, 1e30])
def test_atan2_matches_numpy_in_every_octant_and_across_blocks(scale):
    rng = np.random.default_rng(0)
    n = 3 * BLOCK + 17  # whole blocks and a ragged last one
    y = (rng.standard_normal(n) * scale).astype(np.float32)
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    got = atan2(y, x)
    assert got.dtype == np.float32 and got.shape == (n,)
    error = np.abs(got - exact(y, x))
    # float32 rounding of a result near pi is 2.4e-7; numpy's own float32 atan2 is within 2.5e-7
    assert error.max() < 5e-7
    # every octant is visited and right (a wrong reflection errs by ~1 rad)
    octant = np.floor((exact(y, x) + np.pi) / (np.pi / 4)).astype(int)
    assert set(octant) >= set(range(8))


def test_atan2_edge_values_follow_c():
    y = np.array([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 0.0, 3.0, np.inf, 1.0, 2.0, -2.0, 1e-40, -3e-41],
                 np.float32)
    x = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, -0.0, -0.0, 1.0, np.inf, 2.0, -2.0, 1e-40, -2e-40],
                 np.float32)
    got = atan2(y, x)
    expected = exact(y, x)
    assert np.abs(got - expected).max() < 5e-7  # subnormals too
    assert np.array_equal(np.signbit(got), np.signbit(expected))  # -0.0 and -pi keep their signs
    assert atan2(np.zeros(5, np.float32), np.zeros(5, np.float32)).tolist() == [0.0] * 5  # no NaN for a zero pair


def test_atan2_writes_into_out_and_falls_back_for_other_arrays():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((7, 300)).astype(np.float32)
    x = rng.standard_normal((7, 300)).astype(np.float32)
    out = np.empty_like(y)
    assert atan2(y, x, out=out) is out
    assert np.abs(out - exact(y, x)).max() < 5e-7
    # float64 and strided inputs take NumPy's own arctan2, exactly
    assert np.array_equal(atan2(y.astype(np.float64), x.astype(np.float64)), exact(y, x))
    strided = atan2(y[:, ::2], x[:, ::2])
    assert np.array_equal(strided, np.arctan2(y[:, ::2], x[:, ::2]))


def test_atan2_into_one_of_its_inputs():
    rng = np.random.default_rng(3)
    y = rng.standard_normal(BLOCK + 5).astype(np.float32)
    x = rng.standard_normal(BLOCK + 5).astype(np.float32)
    expected = exact(y, x)
    into_y, into_x = y.copy(), x.copy()
    assert np.abs(atan2(into_y, x, out=into_y) - expected).max() < 5e-7
    assert np.abs(atan2(y, into_x, out=into_x) - expected).max() < 5e-7


def test_product_angle_is_the_phase_step_of_complex64_coefficients():
    rng = np.random.default_rng(2)
    shape = (5, 211, 197)  # 207,835 elements: a whole block and a ragged one
    assert BLOCK < np.prod(shape) < 2 * BLOCK
    amplitude = rng.uniform(0.0, 3.0, (6,) + shape[1:])
    phase = rng.uniform(-np.pi, np.pi, (6,) + shape[1:])
    coefficients = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    coefficients[:, 0, :5] = 0  # a zero coefficient: no phase step, not NaN
    out = np.full(shape, np.nan, np.float32)
    got = product_angle(coefficients[1:], coefficients[:-1], out=out)
    assert got is out
    product = coefficients[1:].astype(np.complex128) * np.conj(coefficients[:-1].astype(np.complex128))
    expected = np.angle(product)
    # near +-pi a float32 product may land on either side of the cut
    wrapped = np.angle(np.exp(1j * (got - expected)))
    assert np.abs(wrapped).max() < 1e-6
    assert np.array_equal(got[:, 0, :5], np.zeros((5, 5), np.float32))
    # and the same values through NumPy's ufuncs where the fast path does not apply
    slow = product_angle(coefficients[1:, :, ::2], coefficients[:-1, :, ::2])
    assert np.abs(np.angle(np.exp(1j * (slow - expected[:, :, ::2])))).max() < 1e-6
