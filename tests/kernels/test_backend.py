"""Backend dispatch: NumPy here; CuPy where a GPU is usable."""

import numpy as np
import pytest

import threading

from daskmag.kernels.backend import array_module, cupy_or_none, fft_module, release_scratch, scratch_arrays, to_numpy


def test_numpy_dispatch():
    x = np.zeros(3)
    assert array_module(x) is np
    assert fft_module(x).__name__ == "scipy.fft"
    assert to_numpy(x) is x


def test_cupy_or_none_never_raises():
    module = cupy_or_none()
    assert module is None or module.__name__ == "cupy"


@pytest.mark.gpu
def test_cupy_dispatch_on_a_gpu():
    cupy = cupy_or_none()
    x = cupy.zeros(3)
    assert array_module(x) is cupy
    assert fft_module(x).__name__ == "cupyx.scipy.fft"
    assert isinstance(to_numpy(x), np.ndarray)


def _base_address(array):
    return array.__array_interface__["data"][0]


def test_scratch_arrays_have_the_asked_shapes_and_do_not_overlap():
    specs = [((3, 5, 7), "float32"), ((2, 4), "complex64"), ((1,), "float16"), ((6, 6), "float32")]
    arrays = scratch_arrays(np, specs)
    assert [(a.shape, a.dtype) for a in arrays] == [(s, np.dtype(d)) for s, d in specs]
    for index, array in enumerate(arrays):
        assert array.flags.c_contiguous and array.flags.writeable
        assert _base_address(array) % 64 == 0
        array[...] = index + 1
    for index, array in enumerate(arrays):  # no array wrote over another
        assert np.all(array == index + 1)


def test_scratch_memory_is_reused_between_calls_and_grows_when_needed():
    first = scratch_arrays(np, [((1000,), "float32")])[0]
    again = scratch_arrays(np, [((500,), "float64")])[0]  # as many bytes: the same memory
    assert _base_address(again) == _base_address(first)
    larger = scratch_arrays(np, [((10**6,), "float32")])[0]
    assert larger.nbytes == 4 * 10**6
    assert _base_address(scratch_arrays(np, [((10**6,), "float32")])[0]) == _base_address(larger)
    release_scratch()
    fresh = scratch_arrays(np, [((10,), "float32")])[0]  # released: a new buffer
    assert fresh.base is not larger.base


def test_each_thread_has_its_own_scratch_memory():
    mine = scratch_arrays(np, [((1000,), "uint8")])[0]
    mine[...] = 7
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(scratch_arrays(np, [((1000,), "uint8")])[0]))
    thread.start()
    thread.join()
    theirs[0][...] = 9
    assert not np.shares_memory(mine, theirs[0])
    assert np.all(mine == 7)


def test_numpy_transforms_are_scipys_and_do_not_depend_on_the_batch():
    """ducc0's 2-D transforms (where installed): SciPy's values, each frame's own whatever its batch."""
    import scipy.fft

    from daskmag.kernels.backend import DuccFFT, fft_module

    fft = fft_module(np.zeros((2, 2), np.complex64))
    if not isinstance(fft, DuccFFT):
        pytest.skip("ducc0 is not importable here: scipy.fft is used")
    rng = np.random.default_rng(0)
    for shape in [(7, 24, 40), (3, 16, 21), (2, 3, 5, 9)]:
        x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        real = rng.standard_normal(shape).astype(np.float32)
        for name in ("fft2", "ifft2"):
            for data in (x, real):
                kept = data.copy()
                got = getattr(fft, name)(data)
                np.testing.assert_array_equal(data, kept)  # not overwritten unless allowed
                expected = getattr(scipy.fft, name)(data)
                assert got.dtype == expected.dtype == np.complex64
                np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * np.abs(expected).max())
                flat = data.reshape((-1,) + shape[-2:])
                alone = np.stack([getattr(fft, name)(flat[i : i + 1]) for i in range(len(flat))])
                np.testing.assert_array_equal(got.reshape(alone.shape), alone)
            np.testing.assert_array_equal(getattr(fft, name)(x.copy(), overwrite_x=True), getattr(fft, name)(x))
    # other options go to scipy.fft as they are
    assert np.array_equal(fft.fft2(x, axes=(0, 1)), scipy.fft.fft2(x, axes=(0, 1)))
    assert fft.next_fast_len is scipy.fft.next_fast_len
