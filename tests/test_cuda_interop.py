"""provmark.gpu's intake of CUDA arrays (``__cuda_array_interface__``), argument checks and its error on
machines without a usable CUDA device. Runs everywhere: the CUDA arrays here are stand-in objects that
describe device memory; no kernel runs unless a device is present (then tests/test_cuda_image.py covers it)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import provmark as pm
from provmark import gpu

from .conftest import CUDA_AVAILABLE


class FakeCuda:
    """An object exposing __cuda_array_interface__ (the memory behind it is never touched on the CPU path)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        typestr: str = "|u1",
        ptr: int = 0x7F00_0000_0000,
        strides: tuple[int, ...] | None = None,
        stream: int | None = None,
        version: int = 3,
    ) -> None:
        self.__cuda_array_interface__: dict[str, Any] = {
            "version": version,
            "shape": shape,
            "typestr": typestr,
            "data": (ptr, False),
            "strides": strides,
            "stream": stream,
        }


def test_is_cuda_array() -> None:
    assert gpu.is_cuda_array(FakeCuda((4, 4)))
    assert not gpu.is_cuda_array(np.zeros((4, 4)))
    assert not gpu.is_cuda_array([1, 2, 3])
    torch = pytest.importorskip("torch")
    assert not gpu.is_cuda_array(torch.zeros(3))


def test_interface_parsing() -> None:
    a = gpu._cai(FakeCuda((2, 5, 7, 3), "<f4"), "t")
    assert (a.dtype, a.shape, a.strides, a.stream) == ("float32", (2, 5, 7, 3), (105, 21, 3, 1), None)
    # byte strides become element strides; a v3 stream entry is kept
    assert gpu._cai(FakeCuda((5, 7), "<f2"), "t").dtype == "float16"
    b = gpu._cai(FakeCuda((5, 7), "<u2", strides=(32, 2), stream=77), "t")
    assert (b.strides, b.stream) == ((16, 1), 77)
    assert gpu._pick_stream(b, None, "t") == 77
    assert gpu._pick_stream(b, 5, "t") == 5  # an explicit stream wins
    assert gpu._pick_stream(a, None, "t") == 0  # no entry, no torch tensor: the legacy default stream


def test_frame_layouts() -> None:
    hwc = gpu._frames(gpu._cai(FakeCuda((64, 80, 4)), "t"), "t", False, None)
    assert (hwc.n, hwc.height, hwc.width, hwc.channels, hwc.strides, hwc.scale) == (1, 64, 80, 4, (0, 320, 4, 1), 1.0)
    chw = gpu._frames(gpu._cai(FakeCuda((8, 3, 64, 80), "<f4"), "t"), "t", True, "CHW")
    assert (chw.n, chw.channels, chw.strides, chw.scale) == (8, 3, (15360, 80, 1, 5120), 255.0)
    grey = gpu._frames(gpu._cai(FakeCuda((6, 64, 80)), "t"), "t", True, "HWC")
    assert (grey.n, grey.channels, grey.strides[:3]) == (6, 1, (5120, 80, 1))
    # an nv12 buffer: the Y plane is the first 64 rows of [96, 80]; p010: uint16 stored << 6
    y = gpu._plane_frames(gpu._cai(FakeCuda((96, 80)), "t"), "t", 64, 80, 8, 0)
    assert (y.height, y.width, y.strides[1], y.scale) == (64, 80, 80, 1.0)
    p = gpu._plane_frames(gpu._cai(FakeCuda((4, 96, 80), "<u2"), "t"), "t", 64, 80, 10, 6)
    assert (p.n, p.shift, p.vmax, p.scale) == (4, 6, 1023.0, 255.0)


def test_layout_from_shape() -> None:
    def lay(shape: tuple[int, ...], batch: bool = False) -> str:
        a = gpu._cai(FakeCuda(shape), "t")
        gpu._frames(a, "t", batch, None)  # accepted as it is read
        return gpu._layout(a, None, batch)

    assert lay((3, 64, 80)) == "CHW"
    assert lay((64, 80, 3)) == "HWC"
    assert lay((4, 64, 80, 3), batch=True) == "HWC"
    assert lay((4, 1, 64, 80), batch=True) == "CHW"
    assert gpu._is_batch(gpu._cai(FakeCuda((5, 64, 80)), "t"), None)
    assert not gpu._is_batch(gpu._cai(FakeCuda((64, 80, 4)), "t"), None)


@pytest.mark.parametrize(
    "arr,exc,match",
    [
        (FakeCuda((64, 80, 2)), ValueError, "C in"),
        (FakeCuda((64, 80, 3), "<i4"), TypeError, "dtype"),
        (FakeCuda((64, 80, 3), ">f4"), TypeError, "dtype"),
        (FakeCuda((64, 80, 3), "<V2"), TypeError, "dtype"),
        (FakeCuda((0, 80, 3)), ValueError, "empty"),
        (FakeCuda((64, 80, 3), ptr=0), ValueError, "null"),
        (FakeCuda((64, 80, 3), version=1), ValueError, "version"),
        (FakeCuda((64, 80, 3), "<f4", strides=(960, 12, 3)), ValueError, "whole elements"),
        (FakeCuda((64, 80), "<u2"), TypeError, "luma planes only"),
        (FakeCuda((32, 80, 3)), ValueError, "at least 64 px"),
        (np.zeros((64, 80, 3), np.uint8), TypeError, "CUDA array"),
    ],
)
def test_bad_input_raises(arr: Any, exc: type[Exception], match: str, key: pm.Key) -> None:
    with pytest.raises(exc, match=match):
        gpu.image_embed(arr, 5, key, informed=False, out=FakeCuda((64, 80, 3), ptr=0x7E00_0000_0000))


def test_bad_arguments_raise(key: pm.Key) -> None:
    x = FakeCuda((64, 80, 3))
    with pytest.raises(TypeError, match="Key"):
        gpu.image_embed(x, 5, b"k" * 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strength"):
        gpu.image_embed(x, 5, key, strength=0.0)
    with pytest.raises(ValueError, match="layout"):
        gpu.image_embed(x, 5, key, layout="NHWC")
    with pytest.raises(ValueError, match="stream"):
        gpu.image_embed(x, 5, key, informed=False, out=x, stream=-1)
    with pytest.raises(ValueError, match="payloads"):
        gpu.image_embed_batch(FakeCuda((2, 64, 80, 3)), [1, 2, 3], key)
    with pytest.raises(ValueError, match="fpr"):
        gpu.image_detect(x, key, fpr=2.0)
    with pytest.raises(ValueError, match="at least 32"):
        gpu.image_detect(FakeCuda((20, 80, 3)), key)
    with pytest.raises(ValueError, match="bit_depth"):
        gpu.LumaEmbedder(80, 64, 5, key).mark(FakeCuda((96, 80), "<u2"), plane=True, bit_depth=8)
    with pytest.raises(ValueError, match="at least 64 rows"):
        gpu.LumaEmbedder(80, 64, 5, key).mark(FakeCuda((60, 80)), plane=True)
    with pytest.raises(ValueError, match="at least 64 px"):
        gpu.LumaEmbedder(80, 32, 5, key)
    with pytest.raises(ValueError, match="overlaps"):
        gpu.image_embed(x, 5, key, informed=False, out=FakeCuda((64, 80, 3), ptr=0x7F00_0000_0010))
    with pytest.raises(ValueError, match="broadcast"):
        gpu.image_embed(x, 5, key, informed=False, out=FakeCuda((64, 80, 3), ptr=0x7E00_0000_0000, strides=(0, 3, 1)))


@pytest.mark.skipif(CUDA_AVAILABLE, reason="checks the error raised where no CUDA device is usable")
def test_without_device_raises_cuda_error(key: pm.Key) -> None:
    x = FakeCuda((64, 80, 3))
    out = FakeCuda((64, 80, 3), ptr=0x7E00_0000_0000)
    assert not gpu.is_available()
    calls = [
        lambda: gpu.image_embed(x, 5, key, informed=False, out=out),
        lambda: gpu.image_embed(x, 5, key),
        lambda: gpu.image_embed_batch(FakeCuda((2, 64, 80, 3)), [1, 2], key),
        lambda: gpu.image_detect(x, key),
        lambda: gpu.image_detect_batch(FakeCuda((2, 64, 80, 3)), key),
        lambda: gpu.work_luma(x),
        lambda: gpu.LumaEmbedder(80, 64, 5, key).mark(FakeCuda((96, 80)), plane=True),
    ]
    for call in calls:
        with pytest.raises(pm.CudaError, match="no usable CUDA device"):
            call()
    # the core entry points raise CudaError too (a build without a driver, or without CUDA)
    from provmark import _core

    planes = np.array([0x7F00_0000_0000], np.uint64)
    core_calls = [
        lambda: _core.cuda_image_fold_many(planes, np.array([80.0]), np.array([0.0]), 64, 80, 0x7E00_0000_0000),
        lambda: _core.cuda_image_reliability(0x7F00_0000_0000, 0x7D00_0000_0000, 1, 64, 80, 0.05, 0x7E00_0000_0000),
    ]
    for call in core_calls:
        with pytest.raises(pm.CudaError):
            call()


def test_value_range_argument(key: pm.Key) -> None:
    """value_range is checked before any device work (so these run without a device)."""
    with pytest.raises(ValueError, match="applies to float pictures"):
        gpu.image_embed(FakeCuda((64, 80, 3)), 5, key, value_range=(-1, 1))
    with pytest.raises(ValueError, match=r"\(0, 1\) or \(-1, 1\)"):
        gpu.image_detect(FakeCuda((64, 80, 3), "<f4"), key, value_range=(-1, 2))
    with pytest.raises(ValueError, match="value_range"):
        gpu.work_luma(FakeCuda((64, 80, 3), "<f4"), value_range=None)
    with pytest.raises(TypeError, match="int16 is an audio sample type"):
        gpu.image_embed(FakeCuda((64, 80, 3), "<i2"), 5, key)
    with pytest.raises(TypeError, match="int16 is an audio sample type"):
        gpu.LumaEmbedder(80, 64, 5, key).mark(FakeCuda((96, 80), "<i2"), plane=True)
