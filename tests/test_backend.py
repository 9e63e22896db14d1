"""backend_info, thread settings and the build without a usable GPU."""

from __future__ import annotations

import pytest

import provmark
from provmark import _core


def test_backend_info_fields() -> None:
    info = provmark.backend_info()
    assert set(info) >= {"compiled_with_cuda", "cuda_device_count", "cuda_error", "simd_level", "num_threads"}
    assert info["simd_level"] in ("baseline", "avx2")
    assert info["num_threads"] >= 1
    if info["cuda_device_count"] == 0:
        assert isinstance(info["cuda_error"], str) and info["cuda_error"]
        assert provmark.backend() == "cpu"
    else:
        assert info["cuda_error"] is None and provmark.backend() == "cuda"


def test_cuda_call_without_device_raises_one_clear_error() -> None:
    if provmark.backend_info()["cuda_device_count"] > 0:
        pytest.skip("a CUDA device is present")
    with pytest.raises(provmark.CudaError) as info:
        _core.random_words(bytes(32), _core.Stream.TEST, 4, 0, "cuda")
    assert isinstance(info.value, RuntimeError)


def test_set_num_threads_roundtrip() -> None:
    before = provmark.get_num_threads()
    try:
        provmark.set_num_threads(1)
        assert provmark.backend_info()["num_threads"] == 1
        with pytest.raises(TypeError):
            provmark.set_num_threads(2.0)  # type: ignore[arg-type]
    finally:
        provmark.set_num_threads(before)
