"""provmark.gpu's orchestration against an emulated device. The ``_core.cuda_*`` entry points are replaced by
numpy implementations of the same contracts (device pointers resolved to host arrays through
``__cuda_array_interface__``), so the Python glue runs without a GPU: layouts and element strides, output
allocation and in-place marking, the informed step's working-size planes and chip scale, the geometric search
on device planes (whitening, reliability weights, batched folds of many hypotheses and their sync statistics,
the lattice search) against the host engine, detection's geometry details in input pixels, the nv12 / p010 plane
handling, float input in [-1, 1]. The kernels themselves are covered by tests/test_cuda_math.py (their shared
per-element math, and image_cuda.cu's kernel source run on host threads) and tests/test_cuda_image.py (on a GPU).
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

    def min(self) -> Any:  # the float range check's reductions (torch / CuPy arrays have them)
        return self.a.min()

    def max(self) -> Any:
        return self.a.max()


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
    """Samples as the CPU engine sees them: uint8 / float as they are, uint16 as (v >> shift) / vmax, float in
    [-1, 1] as (x + 1) / 2."""
    if v.dtype == "uint16":
        return ((x >> meta["shift"]).astype(np.float32) / np.float32(meta["vmax"])).clip(0, 1)
    if meta["lo"] == -1.0:
        return ((x.astype(np.float64) + 1.0) / 2.0).astype(x.dtype if x.dtype == np.float64 else np.float32)
    if v.dtype == "float16":  # widened to float32, marked, rounded back to nearest on assignment
        return x.astype(np.float32)
    return x


class EmulatedDevice:
    def __init__(self) -> None:
        self.meta: dict[int, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fold_sizes: list[int] = []
        self.sync_sizes: list[int] = []
        self.tile_copies = 0  # single tiles copied to the host (for decoding)
        self.plane_copies = 0  # float32 planes copied to the host
        self.lattice_runs = 0  # lattice searches scored on the device

    def _luma(self, v: Any) -> np.ndarray:
        x = _frames_of(v)
        meta = self.meta[id(v)]
        out = []
        for i in range(x.shape[0]):
            u = _units(v, x[i], meta)
            scale = meta["scale"] * (1.0 - meta["lo"])  # grey levels per unit of _units
            if v.shape[3] == 1:
                out.append(u[..., 0].astype(np.float32) * np.float32(scale))
            else:
                out.append(
                    image._ref_luma(np.ascontiguousarray(u[..., :3]))
                    * np.float32(scale / (255.0 if u.dtype != np.uint8 else 1.0))
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

    def whiten(self, y: int, n: int, h: int, w: int, chip: float, out: int, den_in: int = 0, den_out: int = 0,
               stream: int = 0) -> None:  # fmt: skip
        self.calls.append("whiten")
        for i, plane in enumerate(_plane(y, (n, h, w))):
            given = _plane(den_in, (n, h, w))[i] if den_in else None
            wv, den = _core.image_whiten(plane, chip, given)
            _plane(out, (n, h, w))[i] = wv
            if den_out:
                _plane(den_out, (n, h, w))[i] = den

    def reliability(self, w: int, den: int, n: int, h: int, wd: int, floor: float, out: int, stream: int = 0) -> None:
        """The kernels' operations: float32 elementwise, plane means in double."""
        self.calls.append("reliability")
        for i in range(n):
            d = _plane(den, (n, h, wd))[i]
            mean_a = max((float(np.mean(d, dtype=np.float64)) - 0.5) / 1.1, 0.0)
            a = np.maximum(d - np.float32(0.5 + 0.1 * mean_a), np.float32(0.0))
            q = np.square(a / d)
            q += np.float32(floor * float(np.mean(q, dtype=np.float64)) + 1e-12)
            _plane(out, (n, h, wd))[i] = _plane(w, (n, h, wd))[i] / q

    def fold_many(self, planes: np.ndarray, periods: np.ndarray, thetas: np.ndarray, h: int, w: int, out: int,
                  side: int = 128, stream: int = 0) -> None:  # fmt: skip
        """One launch for K hypotheses: tile k = image_fold of plane k (the kernel's bins are fold_bin's,
        tests/test_cuda_math.py)."""
        assert planes.dtype == np.uint64 and periods.dtype == thetas.dtype == np.float64
        self.calls.append("fold_many")
        self.fold_sizes.append(len(planes))
        tiles = _plane(out, (len(planes), side, side), np.float64)
        for k, (ptr, period, theta) in enumerate(zip(planes, periods, thetas, strict=True)):
            tiles[k] = _core.image_fold(_plane(int(ptr), (h, w)), float(period), float(theta), side)

    def sync(self, tiles: int, n: int, spectra: int, out: int, stream: int = 0) -> None:
        """The sync statistic of n tiles as image._Search.evaluate computes it (scipy's float32 FFTs), with the
        template spectra read back from the uploaded layout (full spectrum, bit-reversed rows and columns): the
        kernel's own FFT is checked in tests/test_cuda_math.py."""
        from scipy import fft as sfft

        self.calls.append("sync")
        self.sync_sizes.append(n)
        side = image.TILE * image.BINS
        sp = _plane(spectra, (2, side, side, 2))
        rev = gpu._bit_reversal(side)  # an involution: it also undoes itself
        full = (sp[..., 0] + np.complex64(1j) * sp[..., 1]).astype(np.complex64)[:, rev][:, :, rev]
        pair = np.ascontiguousarray(full[:, :, : side // 2 + 1])
        res = _plane(out, (n, 4), np.float64)
        for k, f in enumerate(_plane(tiles, (n, side, side), np.float64)):
            cc = sfft.irfft2(sfft.rfft2(f.astype(np.float32))[None] * pair, s=(side, side), axes=(-2, -1))
            best: tuple[float, int, int, int] | None = None
            for flip, c in enumerate(cc):
                sd = c.std()
                if not sd > 0:
                    continue
                i = int(np.argmax(c))
                z = float((c.flat[i] - c.mean()) / sd)
                if best is None or z > best[0]:
                    best = (z, i // side, i % side, flip)
            res[k] = best if best is not None else (0.0, 0, 0, 0)

    def lattice(self, w: int, h: int, wd: int, fh: int, fw: int, sigma_y: float, sigma_x: float, rows: np.ndarray,
                cols: np.ndarray, periods: np.ndarray, thetas: np.ndarray, stream: int = 0) -> np.ndarray:  # fmt: skip
        """The lattice scores as image._lattice_candidates computes them (scipy's float32 FFTs, the C++ flattening
        and scoring) from the device plane and the notch masks as uploaded: the kernels' own FFTs, flattening and
        scores are checked in tests/test_cuda_math.py."""
        assert rows.dtype == cols.dtype == np.uint8 and periods.dtype == thetas.dtype == np.float64
        assert rows.shape == (fh,) and cols.shape == (fw // 2 + 1,)
        self.calls.append("lattice")
        self.lattice_runs += 1
        return image._lattice_scores(
            _plane(w, (h, wd)), fh, fw, (sigma_y, sigma_x), rows != 0, cols != 0, periods, thetas
        )

    def copy_to_device(self, dst: int, src: np.ndarray, stream: int = 0) -> None:
        self.calls.append("copy_to_device")
        _plane(dst, src.shape, src.dtype)[...] = src

    def copy_to_host(self, src: int, dst: np.ndarray, stream: int = 0) -> None:
        self.calls.append("copy_to_host")
        if dst.shape == (image.TILE * image.BINS,) * 2:
            self.tile_copies += 1
        if dst.ndim == 2 and dst.dtype == np.float32:
            self.plane_copies += 1
        dst[...] = _plane(src, dst.shape, dst.dtype)

    def embed(
        self, v: Any, o: Any, tiles: np.ndarray, chip: float, target: float, stream: int = 0, flat_rms: float = 0.0
    ) -> None:
        self.calls.append("embed")
        x, y = _frames_of(v), _frames_of(o)
        meta = self.meta[id(v)]
        lum = self._luma(v)
        n, h, w, c = v.shape
        for i in range(n):
            m = image._ref_mask(lum[i])
            p = image._ref_pattern(h, w, tiles[i], chip)
            if flat_rms:
                d = image._ref_flat_delta(p, m, target, flat_rms)
            else:
                d = m * p
                d *= np.float32(target / max(float(np.sqrt(np.mean(d.astype(np.float64) ** 2))), 1e-9))
            u = _units(v, x[i], meta)
            marked = image._ref_apply(np.ascontiguousarray(u if c > 1 else u[..., 0]), d)
            if c == 1:
                marked = marked[..., None]
            if meta["lo"] == -1.0:
                marked = marked.astype(np.float64) * 2.0 - 1.0
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
        dev.meta[id(v)] = {"scale": self.scale, "shift": self.shift, "vmax": self.vmax, "lo": self.lo}
        return v

    monkeypatch.setattr(gpu._Frames, "view", view)
    for name, fn in (("cuda_image_luma", dev.luma), ("cuda_image_mask", dev.mask),
                     ("cuda_image_resample", dev.resample), ("cuda_sum_planes", dev.sum_planes),
                     ("cuda_copy_to_host", dev.copy_to_host), ("cuda_image_embed", dev.embed),
                     ("cuda_image_whiten", dev.whiten), ("cuda_image_reliability", dev.reliability),
                     ("cuda_image_fold_many", dev.fold_many), ("cuda_image_sync", dev.sync),
                     ("cuda_copy_to_device", dev.copy_to_device),
                     ("cuda_image_lattice_scores", dev.lattice)):  # fmt: skip
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
    limited = gpu.LumaEmbedder(w, h, 3, key, flat_rms=0.4).mark(Emu(nv12), plane=True)
    ref = image.LumaEmbedder(w, h, 3, key, informed="off", flat_rms=0.4).mark(y)
    assert lsb(limited.a[:h], ref) <= 1 and not np.array_equal(ref, cpu.mark(y))  # the limit binds on the sky
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


# ---- the geometric search on device planes --------------------------------------------------------------------
FIXED = pm.Key.from_bytes(bytes(range(7, 39)))


def _search_cases() -> list[tuple[str, np.ndarray]]:
    """Real photos marked with FIXED, and the edits that send detection through every stage of the search: the
    nominal geometry, lattice candidates (rotation), the crop scan (a 25 % crop), the hill climb, second
    (reliability-weighted) reads, a rescale, and unmarked pictures."""
    from skimage import transform

    cases = []
    for name, photo in (("astronaut", data.astronaut()), ("coffee", data.coffee()), ("chelsea", data.chelsea())):
        m = image.embed(photo, 0x0123456789ABCDEF, FIXED)
        h, w = m.shape[:2]
        cases.append((f"{name}", m))
        cases.append((f"{name}-crop25", np.ascontiguousarray(m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2])))
        cases.append((f"{name}-rot3", transform.rotate(m, 3.0, mode="reflect").astype(np.float32)))
        cases.append((f"{name}-unmarked", photo))
    big = np.ascontiguousarray(np.repeat(np.repeat(cases[4][1], 2, axis=0), 2, axis=1))  # coffee 800 x 1200
    cases.append(("coffee-2x", big))
    cases.append(("astronaut-0.7x", transform.rescale(cases[0][1], 0.7, channel_axis=2).astype(np.float32)))
    return cases


def _same(a: pm.Detection, b: pm.Detection) -> bool:
    strip = lambda d: {k: v for k, v in d.details.items() if k != "timings_ms"}  # noqa: E731
    return (a.found, a.payload, a.p_value, a.score, strip(a)) == (b.found, b.payload, b.p_value, b.score, strip(b))


@pytest.mark.parametrize("full_search", [False, True])
def test_search_on_device_planes_equals_host_engine(emu: EmulatedDevice, full_search: bool) -> None:
    """gpu.image_detect (device whitening, reliability weights, batched folds and sync statistics, host decoding)
    equals image's own search on the same working-size luma exactly: same hypotheses in the same order,
    same counts, same p-value; tiles folded ahead and never used do not count; the lattice search scores on the
    device and no whitened plane is copied to the host. The emulated whitening and fold are
    the CPU kernels and the emulated sync statistic is the host's scipy correlation (on the spectra read back from
    their uploaded layout), so this checks the orchestration (which tile and statistic go with which hypothesis,
    which tiles are copied), not the kernels."""
    secret = FIXED.secret_bytes()
    batched = lattice_runs = 0
    for name, x in _search_cases():
        h, w = x.shape[:2]
        y = gpu.work_luma(Emu(x))[0]
        emu.fold_sizes.clear()
        emu.sync_sizes.clear()
        emu.tile_copies = emu.plane_copies = emu.lattice_runs = 0
        det = gpu.image_detect(Emu(x), FIXED, full_search=full_search)
        ref = image._detect_work(image._HostPlanes(y), h, w, secret, 64, image.DEFAULT_FPR, full_search)
        assert _same(det, ref), (name, det, ref)
        assert sum(emu.fold_sizes) >= det.details["hypotheses"], name  # every hypothesis folded on the device
        # ... and scored there: only the tiles of decoded hypotheses come to the host
        assert sum(emu.sync_sizes) >= det.details["hypotheses"], name
        assert emu.tile_copies <= det.details["decodes"], name
        # the lattice search ran on the device (whenever the search got that far), and no plane came down
        assert emu.plane_copies == 0, name
        lattice_runs += emu.lattice_runs
        print(f"{name}: {det.details['hypotheses']} hypotheses, fold launches of {emu.fold_sizes}, "
              f"{emu.tile_copies} tiles copied for {det.details['decodes']} decodes, "
              f"{emu.lattice_runs} lattice searches")  # with -s  # fmt: skip
        batched += max(emu.fold_sizes) > 1
        if not name.endswith("unmarked"):
            assert det.found and det.payload == (0x0123456789ABCDEF).to_bytes(8, "big"), name
    assert batched >= 6  # the lattice candidates, crop scan and climb rounds went in batches
    assert lattice_runs == (14 if full_search else 8)  # full search: every picture reaches the lattice search


def test_device_detect_matches_image_detect(emu: EmulatedDevice) -> None:
    """Against image.detect on the full-size pictures: the device's luma is computed as image_luma then resampled
    (the CPU detector fuses the two: ~1e-5 grey levels apart), so the statistic agrees to rounding and every
    decision, count and geometry is the same."""
    for name, x in _search_cases():
        for fs in (False, True):
            det = gpu.image_detect(Emu(x), FIXED, full_search=fs)
            ref = image.detect(x, FIXED, full_search=fs)
            assert (det.found, det.payload) == (ref.found, ref.payload), name
            for k in ("hypotheses", "decodes", "flipped", "crc_ok"):
                assert det.details[k] == ref.details[k], (name, k)
            for k in ("period_px", "scale", "rotation_deg"):
                assert det.details[k] == pytest.approx(ref.details[k], rel=1e-9, abs=1e-12), (name, k)
            assert det.details["shift_px"] == pytest.approx(ref.details["shift_px"], abs=1e-9), name
            assert det.score == pytest.approx(ref.score, abs=2e-3), name
            assert det.p_value == pytest.approx(ref.p_value, rel=0.02, abs=1e-300), name


def test_device_reliability_weights_match_host(emu: EmulatedDevice) -> None:
    """The device's reliability-weighted plane is the host engine's up to its means (double instead of numpy's
    float32 pairwise sums)."""
    y = _core.image_luma(data.chelsea())
    h, w = y.shape
    ydev = Emu(y.copy())
    planes = gpu._DevicePlanes(ydev, ydev.a.ctypes.data, h, w, 0)
    host = image._HostPlanes(y)
    for c in (1.4, 2.5, 4.0):
        d, r = planes.whiten(c), host.whiten(c)
        np.testing.assert_array_equal(planes.host(d), r[0])
        np.testing.assert_allclose(planes.host(planes.reliability(d)), host.reliability(r)[0], rtol=1e-5, atol=1e-6)
    tiles = planes.fold([d, d], [77.0, 80.5], [0.0, 0.03])
    for t, (p, th) in zip(tiles, [(77.0, 0.0), (80.5, 0.03)], strict=True):
        np.testing.assert_array_equal(t, _core.image_fold(r[0], p, th))


# ---- float pictures in [-1, 1] ------------------------------------------------------------------------------------
def test_value_range_signed_floats(emu: EmulatedDevice, rng: np.random.Generator) -> None:
    img = np.ascontiguousarray(data.coffee()[:320, :448])
    unit = (img / 255.0).astype(np.float32)
    signed = unit * np.float32(2.0) - np.float32(1.0)
    pl = pm.Payload(rng.bytes(8))
    out = gpu.image_embed(Emu(signed.copy()), pl, FIXED, value_range=(-1, 1))
    ref = image.embed(unit, pl, FIXED) * 2.0 - 1.0
    np.testing.assert_allclose(out.a, ref, atol=2e-5)
    assert out.a.min() >= -1.0 and out.a.max() <= 1.0 and out.a.min() < -0.9
    det = gpu.image_detect(out, FIXED, value_range=(-1, 1))
    assert det.found and det.payload == pl.data
    assert det.score == pytest.approx(image.detect((out.a + 1) / 2, FIXED).score, abs=2e-3)
    # read as [0, 1] the same samples are a different picture (half of them out of range)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        gpu.image_embed(Emu(signed.copy()), pl, FIXED)
    # the public dispatch, the batch, the frame embedder and a float64 luma plane
    out2 = pm.image.embed(Emu(signed.copy()), pl, FIXED, value_range=(-1, 1))
    np.testing.assert_array_equal(out2.a, out.a)
    assert pm.image.detect(out2, FIXED, value_range=(-1, 1)).payload == pl.data
    both = gpu.image_embed_batch(Emu(np.stack([signed, signed])), pl, FIXED, value_range=(-1, 1))
    np.testing.assert_array_equal(both.a[1], out.a)
    assert [d.payload for d in pm.image.detect_batch(both, FIXED, value_range=(-1, 1))] == [pl.data] * 2
    y = _core.image_luma(img).astype(np.float64) / 127.5 - 1.0
    marked = gpu.LumaEmbedder(448, 320, pl, FIXED).mark(Emu(y.copy()), plane=True, value_range=(-1, 1))
    cpu = image.LumaEmbedder(448, 320, pl, FIXED, informed="off").mark((y + 1.0) / 2.0)
    np.testing.assert_allclose(marked.a, cpu * 2.0 - 1.0, atol=1e-6)


def test_value_range_errors(emu: EmulatedDevice) -> None:
    img = data.chelsea()
    with pytest.raises(ValueError, match="applies to float pictures"):
        gpu.image_embed(Emu(img), 1, FIXED, value_range=(-1, 1))
    with pytest.raises(ValueError, match=r"value_range must be \(0, 1\) or \(-1, 1\)"):
        gpu.image_detect(Emu(img), FIXED, value_range=(0, 255))
    with pytest.raises(ValueError, match="value_range must be"):
        gpu.LumaEmbedder(451, 300, 1, FIXED).mark(Emu(img), value_range="signed")
    with pytest.raises(ValueError, match="CUDA arrays only"):
        pm.image.embed(img, 1, FIXED, value_range=(-1, 1))
    with pytest.raises(ValueError, match="CUDA arrays only"):
        pm.image.detect(img, FIXED, value_range=(-1, 1))
    assert not pm.image.detect(img, FIXED, value_range=(0.0, 1.0)).found  # the default, spelled out


def test_sync_entry_points_check_arguments() -> None:
    """The real (not emulated) cuda_image_sync and cuda_copy_to_device: bad arguments are ValueErrors before any
    device call; on a machine without a usable device, valid-looking pointers give CudaError."""
    dev_ptr = 0x7F00_0000_0000
    with pytest.raises(ValueError, match="number of tiles"):
        _core.cuda_image_sync(dev_ptr, 0, dev_ptr, dev_ptr)
    with pytest.raises(ValueError, match="null device pointer"):
        _core.cuda_image_sync(0, 1, dev_ptr, dev_ptr)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.cuda_copy_to_device(dev_ptr, np.zeros((4, 4), np.float32)[:, ::2])
    if not gpu.is_available():
        with pytest.raises(pm.CudaError):
            _core.cuda_image_sync(dev_ptr, 1, dev_ptr, dev_ptr)
        with pytest.raises(pm.CudaError):
            _core.cuda_copy_to_device(dev_ptr, np.zeros(4, np.float32))


def test_lattice_entry_point_checks_arguments() -> None:
    """The real (not emulated) cuda_image_lattice_scores: bad arguments are TypeErrors / ValueErrors before any
    device call; on a machine without a usable device, valid ones give CudaError."""
    dev_ptr = 0x7F00_0000_0000
    fh, fw, sigma, rows, cols, pgrid, tgrid = image._lattice_plan(300, 451, 1.0)  # type: ignore[misc]
    r8, c8 = rows.astype(np.uint8), cols.astype(np.uint8)
    args = (dev_ptr, 300, 451, fh, fw, *sigma)
    with pytest.raises(TypeError, match="uint8"):
        _core.cuda_image_lattice_scores(*args, rows, c8, pgrid, tgrid)
    with pytest.raises(ValueError, match="notch_rows must have fft_h entries"):
        _core.cuda_image_lattice_scores(*args, r8[:-1], c8, pgrid, tgrid)
    with pytest.raises(ValueError, match="must not be empty"):
        _core.cuda_image_lattice_scores(*args, r8, c8, pgrid[:0], tgrid)
    if not gpu.is_available():
        with pytest.raises(pm.CudaError):
            _core.cuda_image_lattice_scores(*args, r8, c8, pgrid, tgrid)
