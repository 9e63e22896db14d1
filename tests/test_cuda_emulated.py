"""provmark.gpu's orchestration against an emulated device. The ``_core.cuda_*`` entry points are replaced by
numpy implementations of the same contracts (device pointers resolved to host arrays through
``__cuda_array_interface__``), so the Python glue runs without a GPU: layouts and element strides, output
allocation and in-place marking, the informed step's working-size planes and chip scale, detection's geometry
details in input pixels, the nv12 / p010 plane handling. The kernels themselves are covered by
tests/test_cuda_math.py (their shared per-element math, on the host) and tests/test_cuda_image.py (on a GPU).
"""

from __future__ import annotations

import ctypes
from typing import Any, ClassVar

import numpy as np
import pytest
from skimage import data

import provmark as pm
from provmark import _core, gpu, image


class Emu:
    """A host numpy array posing as device memory (its __cuda_array_interface__ points at the host buffer)."""

    live: ClassVar[list[np.ndarray]] = []

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        base = a
        while isinstance(base.base, np.ndarray):
            base = base.base
        Emu.live.append(base)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        a = self.a
        strides = None if a.flags.c_contiguous else a.strides
        return {"version": 3, "shape": a.shape, "typestr": a.dtype.str, "data": (a.ctypes.data, False),
                "strides": strides, "stream": None}  # fmt: skip


def _owner(ptr: int) -> tuple[np.ndarray, int]:
    """The whole allocation holding ``ptr`` as raw bytes, and the offset of ``ptr`` in it."""
    for base in Emu.live:
        start = base.ctypes.data
        if start <= ptr < start + base.nbytes:
            raw = np.ctypeslib.as_array((ctypes.c_uint8 * base.nbytes).from_address(start))
            return raw, ptr - start
    raise AssertionError(f"pointer {ptr:#x} is not emulated device memory")


def _frames_of(v: Any) -> np.ndarray:
    """[N, H, W, C] strided view of a CudaFrameView's samples."""
    base, off = _owner(v.ptr)
    dt = np.dtype(v.dtype)
    n, h, w, c = v.shape
    st = tuple(s * dt.itemsize for s in v.strides)
    return np.ndarray((n, h, w, c), dt, buffer=base, offset=off, strides=st)


def _plane(ptr: int, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    base, off = _owner(ptr)
    return np.ndarray(shape, dtype, buffer=base, offset=off)


def _units(v: Any, x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Samples as the CPU engine sees them: uint8 / float as they are, uint16 as (v >> shift) / vmax."""
    if v.dtype == "uint16":
        return ((x >> meta["shift"]).astype(np.float32) / np.float32(meta["vmax"])).clip(0, 1)
    if v.dtype == "float16":  # widened to float32, marked, rounded back to nearest on assignment
        return x.astype(np.float32)
    return x


class EmulatedDevice:
    def __init__(self) -> None:
        self.meta: dict[int, dict[str, Any]] = {}
        self.calls: list[str] = []

    def _luma(self, v: Any) -> np.ndarray:
        x = _frames_of(v)
        meta = self.meta[id(v)]
        out = []
        for i in range(x.shape[0]):
            u = _units(v, x[i], meta)
            if v.shape[3] == 1:
                out.append(u[..., 0].astype(np.float32) * np.float32(meta["scale"]))
            else:
                out.append(
                    image._ref_luma(np.ascontiguousarray(u[..., :3]))
                    * np.float32(meta["scale"] / (255.0 if u.dtype != np.uint8 else 1.0))
                )
        return np.stack(out)

    def luma(self, v: Any, out: int, stream: int = 0) -> None:
        self.calls.append("luma")
        n, h, w, _c = v.shape
        _plane(out, (n, h, w))[...] = self._luma(v)

    def mask(self, v: Any, out: int, stream: int = 0) -> None:
        self.calls.append("mask")
        n, h, w, _c = v.shape
        _plane(out, (n, h, w))[...] = np.stack([image._ref_mask(y) for y in self._luma(v)])

    def resample(self, v: Any, out: int, oh: int, ow: int, stream: int = 0) -> None:
        self.calls.append("resample")
        _plane(out, (v.shape[0], oh, ow))[...] = np.stack([_core.image_resample(y, oh, ow) for y in self._luma(v)])

    def sum_planes(self, src: int, n: int, plane: int, out: int, stream: int = 0) -> None:
        self.calls.append("sum_planes")
        _plane(out, (plane,), np.float64)[...] = _plane(src, (n, plane)).astype(np.float64).sum(axis=0)

    def copy_to_host(self, src: int, dst: np.ndarray, stream: int = 0) -> None:
        self.calls.append("copy_to_host")
        dst[...] = _plane(src, dst.shape, dst.dtype)

    def embed(self, v: Any, o: Any, tiles: np.ndarray, chip: float, target: float, stream: int = 0) -> None:
        self.calls.append("embed")
        x, y = _frames_of(v), _frames_of(o)
        meta = self.meta[id(v)]
        lum = self._luma(v)
        n, h, w, c = v.shape
        for i in range(n):
            m = image._ref_mask(lum[i])
            d = m * image._ref_pattern(h, w, tiles[i], chip)
            d *= np.float32(target / max(float(np.sqrt(np.mean(d.astype(np.float64) ** 2))), 1e-9))
            u = _units(v, x[i], meta)
            marked = image._ref_apply(np.ascontiguousarray(u if c > 1 else u[..., 0]), d)
            if c == 1:
                marked = marked[..., None]
            if v.dtype == "uint16":
                vmax = np.float32(meta["vmax"])
                marked = np.clip(np.rint(marked * vmax), 0, vmax).astype(np.uint16) << meta["shift"]
            y[i] = marked


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> EmulatedDevice:
    dev = EmulatedDevice()
    monkeypatch.setattr(gpu, "_device_state", lambda: (1, None))
    orig_view = gpu._Frames.view

    def view(self: Any, ptr: int | None = None, strides: Any = None) -> Any:
        v = orig_view(self, ptr, strides)
        dev.meta[id(v)] = {"scale": self.scale, "shift": self.shift, "vmax": self.vmax}
        return v

    monkeypatch.setattr(gpu._Frames, "view", view)
    for name, fn in (("cuda_image_luma", dev.luma), ("cuda_image_mask", dev.mask),
                     ("cuda_image_resample", dev.resample), ("cuda_sum_planes", dev.sum_planes),
                     ("cuda_copy_to_host", dev.copy_to_host), ("cuda_image_embed", dev.embed)):  # fmt: skip
        monkeypatch.setattr(_core, name, fn)

    def empty(like: Any, shape: tuple[int, ...], dtype: str) -> Emu:
        return Emu(np.zeros(shape, dtype))

    monkeypatch.setattr(gpu, "_empty", empty)
    monkeypatch.setattr(gpu, "_empty_like", lambda x: Emu(np.zeros_like(x.a)))
    monkeypatch.setattr(gpu, "_clone", lambda x: Emu(x.a.copy()))
    Emu.live.clear()
    return dev


def lsb(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("informed", [False, True])
def test_embed_hwc_matches_cpu(emu: EmulatedDevice, key: pm.Key, rng: np.random.Generator, informed: bool) -> None:
    img = np.ascontiguousarray(np.repeat(np.repeat(data.coffee(), 2, axis=0), 2, axis=1))  # 800 x 1200
    pl = pm.Payload(rng.bytes(8))
    out = gpu.image_embed(Emu(img), pl, key, informed=informed)
    ref = image.embed(img, pl, key) if informed else image.LumaEmbedder(1200, 800, pl, key, informed="off").mark(img)
    assert lsb(out.a, ref) <= 1
    assert ("resample" in emu.calls) == informed


def test_embed_chw_float_batch_and_strided(emu: EmulatedDevice, key: pm.Key, rng: np.random.Generator) -> None:
    imgs = np.stack([p()[:300, :400] for p in (data.astronaut, data.coffee, data.chelsea)])
    nchw = np.ascontiguousarray((imgs / 255.0).astype(np.float32).transpose(0, 3, 1, 2))
    pls = [pm.Payload(rng.bytes(8)) for _ in range(3)]
    out = gpu.image_embed_batch(Emu(nchw), pls, key, layout="CHW", check=False)
    torch = pytest.importorskip("torch")

    ref = image.embed_batch(torch.from_numpy(nchw), pls, key).numpy()
    np.testing.assert_allclose(out.a, ref, atol=1e-5)
    # a channels-last (strided) view of the same memory reads the same pictures
    hwc_view = Emu(nchw.transpose(0, 2, 3, 1))
    out2 = gpu.image_embed_batch(hwc_view, pls, key, check=False)
    np.testing.assert_allclose(out2.a.transpose(0, 3, 1, 2), ref, atol=1e-5)


def test_embed_float16(emu: EmulatedDevice, key: pm.Key) -> None:
    img = data.chelsea()
    half = (img / 255.0).astype(np.float16)
    out = gpu.image_embed(Emu(half), 4, key, informed=False, check=False)
    assert out.a.dtype == np.float16
    ref = image.LumaEmbedder(451, 300, 4, key, informed="off").mark(half.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(out.a.astype(np.float32), ref.astype(np.float32), rtol=0, atol=1e-3)


def test_in_place_and_rgba(emu: EmulatedDevice, key: pm.Key) -> None:
    img = data.astronaut()
    rgba = np.concatenate([img, np.full((512, 512, 1), 77, np.uint8)], axis=2)
    x = Emu(rgba.copy())
    res = gpu.image_embed(x, 9, key, informed=False, out=x)
    assert res is x
    assert np.all(x.a[..., 3] == 77)
    assert lsb(x.a, image.LumaEmbedder(512, 512, 9, key, informed="off").mark(rgba)) <= 1


def test_luma_embedder_planes(emu: EmulatedDevice, key: pm.Key, rng: np.random.Generator) -> None:
    y = np.ascontiguousarray(data.camera()[:480])
    h, w = y.shape
    chroma = rng.integers(0, 256, (h // 2, w), dtype=np.uint8)
    nv12 = np.concatenate([y, chroma])
    emb = gpu.LumaEmbedder(w, h, 3, key)
    x = Emu(nv12)
    out = emb.mark(x, plane=True)
    assert out is not x and np.array_equal(x.a, nv12)  # the input is untouched
    cpu = image.LumaEmbedder(w, h, 3, key, informed="off")
    assert lsb(out.a[:h], cpu.mark(y)) <= 1
    np.testing.assert_array_equal(out.a[h:], chroma)
    v10 = (y.astype(np.uint16) * 4 + 3).astype(np.uint16)
    p010 = np.concatenate([v10 << 6, chroma.astype(np.uint16) << 6])
    out = emb.mark(Emu(p010), plane=True, bit_depth=10, shift=6)
    assert lsb(out.a[:h], cpu.mark(v10, bit_depth=10).astype(np.int64) << 6) <= 64
    np.testing.assert_array_equal(out.a[h:], chroma.astype(np.uint16) << 6)


def test_detect_and_video_sum(emu: EmulatedDevice, key: pm.Key, rng: np.random.Generator) -> None:
    img = np.ascontiguousarray(np.repeat(np.repeat(data.chelsea(), 2, axis=0), 2, axis=1))  # 600 x 902
    pl = pm.Payload(rng.bytes(8))
    marked = image.embed(img, pl, key)
    det = gpu.image_detect(Emu(marked), key)
    ref = image.detect(marked, key)
    assert det.found and det.payload == pl.data == ref.payload
    assert abs(det.score - ref.score) < 1e-3 * ref.score
    for k in ("period_px", "scale", "rotation_deg"):
        assert det.details[k] == pytest.approx(ref.details[k], rel=1e-6, abs=1e-9), k
    assert det.details["shift_px"] == pytest.approx(ref.details["shift_px"], abs=1e-6)
    assert not gpu.image_detect(Emu(marked), pm.Key.generate()).found
    batch = np.stack([marked, marked])
    dets = gpu.image_detect_batch(Emu(batch), key)
    assert [d.payload for d in dets] == [pl.data, pl.data]
    total = gpu.work_luma(Emu(batch), reduce="sum")
    np.testing.assert_allclose(total / 2, gpu.work_luma(Emu(marked[None]))[0], rtol=1e-6)


def test_public_api_dispatches_cuda_arrays(emu: EmulatedDevice, key: pm.Key, rng: np.random.Generator) -> None:
    """pm.image.embed/detect and pm.video.FrameEmbedder/detect_frames take CUDA arrays and keep them on the device."""
    img = np.ascontiguousarray(data.astronaut()[:384, :448])
    pl = pm.Payload(rng.bytes(8))
    out = pm.image.embed(Emu(img), pl, key)
    assert isinstance(out, Emu) and "embed" in emu.calls
    assert lsb(out.a, image.embed(img, pl, key)) <= 1
    assert pm.image.detect(out, key).payload == pl.data
    assert [d.payload for d in pm.image.detect_batch(Emu(np.stack([out.a, out.a])), key)] == [pl.data] * 2
    emb = pm.video.FrameEmbedder(448, 384, pl, key)
    frames = [emb.push(Emu(img.copy())) for _ in range(3)]
    assert all(isinstance(f, Emu) for f in frames)
    cpu = pm.video.FrameEmbedder(448, 384, pl, key).push(img.copy())
    assert lsb(frames[0].a, cpu) <= 1
    det = pm.video.detect_frames(Emu(np.stack([f.a for f in frames])), key)
    assert det.found and det.payload == pl.data and det.details["frames"] == 3
