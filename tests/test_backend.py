"""Backend dispatch: NumPy here; CuPy where a GPU is usable."""

import numpy as np
import pytest

from daskmag._backend import array_module, cupy_or_none, fft_module, to_numpy


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
