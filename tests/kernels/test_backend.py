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
