"""CUDA image kernels and provmark.gpu against the CPU engine on real photos with fresh random keys (marker
``cuda``: skipped without a CUDA build and device; needs torch with CUDA for the device arrays).

Tolerances: luma, resampling and the fold are computed with the same operations in the same order as the
CPU (csrc/core/image_math.h) and agree to float rounding (atomics reorder the fold's sums); the mask agrees to
a few float ulps (the order of additions at the borders differs); embedded uint8 / uint16 pixels are within
1 LSB of the CPU's (a rounding tie can fall either way) and float pixels within 1e-5."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from skimage import data

import provmark as pm
from provmark import _core, gpu, image

pytestmark = pytest.mark.cuda
torch = pytest.importorskip("torch")

PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea}


def dev(a: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(a)).cuda()


def host(t: Any) -> np.ndarray:
    torch.cuda.synchronize()
    return t.cpu().numpy()


def frames(t: Any, batch: bool = False, layout: str = "HWC") -> Any:
    return gpu._frames(gpu._cai(t, "test"), "test", batch, layout)


def empty(*shape: int, dtype: Any = None) -> Any:
    return torch.empty(shape, dtype=dtype or torch.float32, device="cuda")


def big(photo: np.ndarray) -> np.ndarray:
    """The photo upscaled 2x (nearest): above the 512-px working size, so detection and the informed step
    resample."""
    return np.ascontiguousarray(np.repeat(np.repeat(photo, 2, axis=0), 2, axis=1))


def lsb_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return int(d.max()), float(np.mean(d > 0))


@pytest.mark.parametrize("name", list(PHOTOS))
def test_luma_all_layouts(name: str) -> None:
    img = PHOTOS[name]()
    ref = _core.image_luma(img)
    rgba = np.concatenate([img, np.full((*img.shape[:2], 1), 200, np.uint8)], axis=2)
    f32 = (img / 255.0).astype(np.float32)
    cases = [
        (dev(img), "HWC"),
        (dev(rgba), "HWC"),
        (dev(f32), "HWC"),
        (dev(f32.astype(np.float64)), "HWC"),
        (dev(np.ascontiguousarray(f32.transpose(2, 0, 1))), "CHW"),
        (dev(img).permute(2, 0, 1), "CHW"),  # a strided (channels-last) view
    ]
    for t, layout in cases:
        out = empty(*img.shape[:2])
        _core.cuda_image_luma(frames(t, layout=layout).view(), out.data_ptr())
        np.testing.assert_allclose(host(out), ref, rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", list(PHOTOS))
def test_mask_and_resample(name: str) -> None:
    img = big(PHOTOS[name]())
    h, w = img.shape[:2]
    y = _core.image_luma(img)
    t = dev(img)
    m = empty(h, w)
    _core.cuda_image_mask(frames(t).view(), m.data_ptr())
    np.testing.assert_allclose(host(m), image._ref_mask(y), rtol=0, atol=1e-4)
    hw, ww, _s = image._work_shape(h, w)
    r = empty(hw, ww)
    _core.cuda_image_resample(frames(t).view(), r.data_ptr(), hw, ww)
    np.testing.assert_allclose(host(r), _core.image_resample(y, hw, ww), rtol=0, atol=2e-3)


def test_batch_of_frames_in_one_launch(key: pm.Key) -> None:
    imgs = np.stack([p()[:300, :400] for p in PHOTOS.values()])  # [3, 300, 400, 3]
    t = dev(imgs)
    out = empty(3, 300, 400)
    _core.cuda_image_mask(frames(t, batch=True).view(), out.data_ptr())
    got = host(out)
    for i in range(3):
        np.testing.assert_allclose(got[i], image._ref_mask(_core.image_luma(imgs[i])), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", list(PHOTOS))
def test_blur_whiten_fold(name: str, rng: np.random.Generator) -> None:
    from scipy import ndimage

    y = _core.image_luma(PHOTOS[name]())
    h, w = y.shape
    yd = dev(y)
    for sigma in (0.4, 1.3, 4.0):
        out = empty(h, w)
        _core.cuda_image_blur(yd.data_ptr(), 1, h, w, sigma, out.data_ptr())
        ref = ndimage.gaussian_filter(y, sigma, mode="reflect", truncate=3.0)
        np.testing.assert_allclose(host(out), ref, rtol=0, atol=2e-3)
    chip = 2.0 + 3.0 * rng.random()
    wv, den = _core.image_whiten(y, chip)
    out, dn = empty(h, w), empty(h, w)
    _core.cuda_image_whiten(yd.data_ptr(), 1, h, w, chip, out.data_ptr(), 0, dn.data_ptr())
    np.testing.assert_allclose(host(dn), den, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(host(out), wv, rtol=0, atol=1e-4 * float(np.abs(wv).max()))
    # the linear read-out with a given denominator
    wv2, _ = _core.image_whiten(y, chip, den)
    out2 = empty(h, w)
    dd = dev(den)  # held while the kernels use it
    _core.cuda_image_whiten(yd.data_ptr(), 1, h, w, chip, out2.data_ptr(), dd.data_ptr(), 0)
    np.testing.assert_allclose(host(out2), wv2, rtol=0, atol=1e-4 * float(np.abs(wv2).max()))
    # fold of the same (CPU-whitened) plane
    wd = dev(wv)
    for period, theta in ((32 * chip, 0.0), (32 * chip * 1.013, 0.02)):
        f = torch.empty((1, 128, 128), dtype=torch.float64, device="cuda")
        _core.cuda_image_fold(wd.data_ptr(), 1, h, w, period, theta, f.data_ptr())
        np.testing.assert_allclose(host(f)[0], _core.image_fold(wv, period, theta), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", list(PHOTOS))
def test_embed_uint8_matches_cpu(name: str, key: pm.Key, rng: np.random.Generator) -> None:
    img = PHOTOS[name]()
    h, w = img.shape[:2]
    pl = pm.Payload(rng.bytes(8))
    # informed off (the frame path) against image.LumaEmbedder(informed="off")
    got = host(gpu.image_embed(dev(img), pl, key, informed=False))
    ref = image.LumaEmbedder(w, h, pl, key, informed="off").mark(img)
    mx, frac = lsb_diff(got, ref)
    assert mx <= 1 and frac < 1e-3, (mx, frac)
    # informed on, against image.embed
    got = host(gpu.image_embed(dev(img), pl, key))
    mx, frac = lsb_diff(got, image.embed(img, pl, key))
    assert mx <= 1 and frac < 1e-3, (mx, frac)


def test_embed_informed_on_a_large_picture(key: pm.Key, rng: np.random.Generator) -> None:
    img = big(data.coffee())  # 800 x 1200: the informed step works on resampled planes
    pl = pm.Payload(rng.bytes(8))
    got = host(gpu.image_embed(dev(img), pl, key))
    mx, frac = lsb_diff(got, image.embed(img, pl, key))
    assert mx <= 1 and frac < 1e-3, (mx, frac)


def test_embed_rgba_grey_float_and_in_place(key: pm.Key, rng: np.random.Generator) -> None:
    img = data.astronaut()
    pl = pm.Payload(rng.bytes(8))
    alpha = rng.integers(0, 256, (*img.shape[:2], 1), dtype=np.uint8)
    rgba = np.concatenate([img, alpha], axis=2)
    got = host(gpu.image_embed(dev(rgba), pl, key, informed=False))
    np.testing.assert_array_equal(got[..., 3], rgba[..., 3])
    ref = image.LumaEmbedder(512, 512, pl, key, informed="off").mark(rgba)
    assert lsb_diff(got, ref)[0] <= 1
    grey = data.camera()
    got = host(gpu.image_embed(dev(grey), pl, key, informed=False))
    assert lsb_diff(got, image.LumaEmbedder(512, 512, pl, key, informed="off").mark(grey))[0] <= 1
    f = (img / 255.0).astype(np.float32)
    got = host(gpu.image_embed(dev(f), pl, key, informed=False))
    np.testing.assert_allclose(got, image.LumaEmbedder(512, 512, pl, key, informed="off").mark(f), rtol=0, atol=1e-5)
    # in place (the stored-mask pass) equals out of place (the recomputing pass) exactly
    t = dev(img)
    fresh = host(gpu.image_embed(t, pl, key, informed=False))
    same = gpu.image_embed(t, pl, key, informed=False, out=t)
    assert same is t
    np.testing.assert_array_equal(host(t), fresh)


def test_embed_half_precision(key: pm.Key, rng: np.random.Generator) -> None:
    img = data.coffee()
    pl = pm.Payload(rng.bytes(8))
    chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255
    emb = image.LumaEmbedder(600, 400, pl, key, informed="off")
    for dtype, ulp in ((torch.float16, 2.0**-11), (torch.bfloat16, 2.0**-8)):
        x = chw.to(dtype)
        got = gpu.image_embed(x.cuda(), pl, key, informed=False)
        assert got.dtype == dtype
        ref = emb.mark(np.ascontiguousarray(x.float().numpy().transpose(1, 2, 0)))
        ref_t = torch.from_numpy(np.ascontiguousarray(ref.transpose(2, 0, 1))).to(dtype).float()
        np.testing.assert_allclose(host(got.float()), ref_t.numpy(), rtol=0, atol=ulp)


def test_embed_batch_float_nchw(key: pm.Key, rng: np.random.Generator) -> None:
    imgs = np.stack([p()[:300, :400] for p in PHOTOS.values()])
    nchw = np.ascontiguousarray((imgs / 255.0).astype(np.float32).transpose(0, 3, 1, 2))
    pls = [pm.Payload(rng.bytes(8)) for _ in range(3)]
    got = host(gpu.image_embed_batch(dev(nchw), pls, key))
    ref = image.embed_batch(torch.from_numpy(nchw), pls, key).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    # torch [N, C, H, W] through image_embed dispatches to the batch, like image.embed
    got2 = host(gpu.image_embed(dev(nchw), pls[0], key, informed=False))
    for i in range(3):
        emb = image.LumaEmbedder(400, 300, pls[0], key, informed="off")
        np.testing.assert_allclose(got2[i], emb.mark(imgs[i] / np.float32(255.0)).transpose(2, 0, 1), atol=1e-5)


def test_embed_on_a_side_stream_equals_default(key: pm.Key, rng: np.random.Generator) -> None:
    img = data.chelsea()
    pl = pm.Payload(rng.bytes(8))
    ref = host(gpu.image_embed(dev(img), pl, key, informed=False))
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        t = dev(img)
        out = gpu.image_embed(t, pl, key, informed=False)  # torch's current stream: s
    s.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), ref)
    t2 = dev(img)  # copied on the default stream: make the side stream wait for it
    s.wait_stream(torch.cuda.current_stream())
    out2 = gpu.image_embed(t2, pl, key, informed=False, stream=s.cuda_stream)
    s.synchronize()
    np.testing.assert_array_equal(out2.cpu().numpy(), ref)


def test_luma_embedder_nv12_and_p010(key: pm.Key, rng: np.random.Generator) -> None:
    y = data.camera()[:480, :512]
    h, w = y.shape
    pl = pm.Payload(rng.bytes(8))
    chroma = rng.integers(0, 256, (h // 2, w), dtype=np.uint8)
    nv12 = np.concatenate([y, chroma])  # [H * 3 / 2, W]
    emb = gpu.LumaEmbedder(w, h, pl, key)
    got = host(emb.mark(dev(nv12), plane=True))
    cpu = image.LumaEmbedder(w, h, pl, key, informed="off")
    assert lsb_diff(got[:h], cpu.mark(y))[0] <= 1
    np.testing.assert_array_equal(got[h:], chroma)
    # 10-bit samples stored << 6 (p010), a batch of 2
    v10 = (y.astype(np.uint16) * 4 + rng.integers(0, 4, y.shape)).astype(np.uint16)
    p010 = np.stack([np.concatenate([v10 << 6, chroma.astype(np.uint16) << 6])] * 2)
    got = host(emb.mark(dev(p010), plane=True, bit_depth=10, shift=6))
    ref = cpu.mark(v10, bit_depth=10).astype(np.int64) << 6
    for i in range(2):
        assert int(np.abs(got[i, :h].astype(np.int64) - ref).max()) <= 64
        np.testing.assert_array_equal(got[i, h:], chroma.astype(np.uint16) << 6)
    # in place on the caller's buffer
    t = dev(nv12)
    emb.mark(t, plane=True, out=t)
    assert lsb_diff(host(t)[:h], cpu.mark(y))[0] <= 1
    # the flat limit (the video profile's): two gains per frame, picked per pixel
    ref = image.LumaEmbedder(w, h, pl, key, informed="off", flat_rms=0.4).mark(y)
    for out in (None, "in place"):
        t = dev(nv12)
        got = gpu.LumaEmbedder(w, h, pl, key, flat_rms=0.4).mark(t, plane=True, out=t if out else None)
        assert lsb_diff(host(got)[:h], ref)[0] <= 1


@pytest.mark.parametrize("name", list(PHOTOS))
def test_detect_same_payload(name: str, key: pm.Key, rng: np.random.Generator) -> None:
    img = big(PHOTOS[name]())
    pl = pm.Payload(rng.bytes(8))
    marked = image.embed(img, pl, key)
    det = gpu.image_detect(dev(marked), key)
    ref = image.detect(marked, key)
    assert isinstance(det, pm.Detection) and det.found and det.payload == pl.data == ref.payload
    assert abs(det.score - ref.score) <= 0.02 * ref.score + 0.05
    assert abs(det.details["period_px"] - ref.details["period_px"]) <= 0.01 * ref.details["period_px"]
    assert not gpu.image_detect(dev(marked), pm.Key.generate()).found
    assert not gpu.image_detect(dev(img), key).found


def test_detect_batch_and_video_sum(key: pm.Key, rng: np.random.Generator) -> None:
    imgs = np.stack([p()[:300, :400] for p in PHOTOS.values()])
    pls = [pm.Payload(rng.bytes(8)) for _ in range(3)]
    marked = image.embed_batch(imgs, pls, key)
    dets = gpu.image_detect_batch(dev(marked), key)
    assert [d.payload for d in dets] == [p.data for p in pls]
    per = gpu.work_luma(dev(marked))
    total = gpu.work_luma(dev(marked), reduce="sum")
    np.testing.assert_allclose(total, per.astype(np.float64).sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(per[0], _core.image_luma(marked[0]), atol=1e-3)


def test_fold_many_and_reliability() -> None:
    """Many hypotheses over two whitened planes in one launch, and the reliability-weighted plane, against the
    CPU fold and the host engine's weights."""
    y = _core.image_luma(data.coffee())
    h, w = y.shape
    planes_host = image._HostPlanes(y)
    planes = [planes_host.whiten(c) for c in (1.6, 3.2)]
    devs = [(dev(p[0]), dev(p[1])) for p in planes]  # held while the kernels use them
    hyps = [(0, 51.2, 0.0), (1, 102.4, 0.0), (0, 53.0, 0.04), (1, 99.0, -0.12), (0, 40.0, 0.0)]
    out = torch.empty((len(hyps), 128, 128), dtype=torch.float64, device="cuda")
    _core.cuda_image_fold_many(np.array([devs[p][0].data_ptr() for p, _, _ in hyps], np.uint64),
                               np.array([x[1] for x in hyps]), np.array([x[2] for x in hyps]), h, w,
                               out.data_ptr())  # fmt: skip
    got = host(out)
    for k, (p, period, theta) in enumerate(hyps):
        np.testing.assert_allclose(got[k], _core.image_fold(planes[p][0], period, theta), rtol=0, atol=1e-9)
    r = empty(h, w)
    _core.cuda_image_reliability(devs[1][0].data_ptr(), devs[1][1].data_ptr(), 1, h, w, image.RELIABILITY_FLOOR,
                                 r.data_ptr())  # fmt: skip
    np.testing.assert_allclose(host(r), planes_host.reliability(planes[1])[0], rtol=1e-4, atol=1e-5)


FIXED = pm.Key.from_bytes(bytes(range(7, 39)))


@pytest.mark.parametrize("name", list(PHOTOS))
def test_detect_full_search_matches_cpu(name: str) -> None:
    """The device search (whitening, reliability weights, batched folds) against image.detect on crops,
    rotations and unmarked pictures: same payloads; the statistic to rounding."""
    from skimage import transform

    m = image.embed(PHOTOS[name](), 0x0123456789ABCDEF, FIXED)
    h, w = m.shape[:2]
    cases = [m, np.ascontiguousarray(m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]),
             transform.rotate(m, 3.0, mode="reflect").astype(np.float32), PHOTOS[name]()]  # fmt: skip
    for x in cases:
        for fs in (False, True):
            det = gpu.image_detect(dev(x), FIXED, full_search=fs)
            ref = image.detect(x, FIXED, full_search=fs)
            assert (det.found, det.payload) == (ref.found, ref.payload)
            assert abs(det.score - ref.score) <= 0.01 * abs(ref.score) + 0.02
            if ref.found:
                assert det.details["period_px"] == pytest.approx(ref.details["period_px"], rel=2e-3)


def test_value_range_signed(key: pm.Key, rng: np.random.Generator) -> None:
    img = data.astronaut()
    unit = (img / 255.0).astype(np.float32)
    signed = unit * 2 - 1
    pl = pm.Payload(rng.bytes(8))
    got = host(gpu.image_embed(dev(signed), pl, key, value_range=(-1, 1)))
    np.testing.assert_allclose(got, image.embed(unit, pl, key) * 2 - 1, rtol=0, atol=2e-5)
    assert got.min() >= -1 and got.max() <= 1
    det = gpu.image_detect(dev(got), key, value_range=(-1, 1))
    assert det.found and det.payload == pl.data
    chw = dev(np.ascontiguousarray(signed.transpose(2, 0, 1)))
    out = pm.image.embed(chw, pl, key, value_range=(-1, 1))
    np.testing.assert_allclose(host(out).transpose(1, 2, 0), got, rtol=0, atol=2e-5)


def test_sync_statistic_matches_host() -> None:
    """cuda_image_sync (the device's float32 FFT correlation, z, best shift and flip of each folded tile) against
    image._Search.evaluate on real photos' tiles: marked, mirrored, cropped to 25 % and unmarked, each at the
    nominal lattice and at the geometry the host engine finds. Same shift and flip; z to 1e-5 (relative; on host
    threads the kernel source agrees to 2e-7, tests/test_cuda_math.py)."""
    secret = FIXED.secret_bytes()
    tabs = image._tables(secret, 64)
    tiles, ref = [], []
    for name in PHOTOS:
        m = image.embed(PHOTOS[name](), 0x0123456789ABCDEF, FIXED)
        h, w = m.shape[:2]
        for x in (m, m[:, ::-1], m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2], PHOTOS[name]()):
            x = np.ascontiguousarray(x)
            hh, ww = x.shape[:2]
            hw, wwk, s = image._work_shape(hh, ww)
            y = _core.image_luma_work(x, hw, wwk)
            det = image._detect_work(image._HostPlanes(y), hh, ww, secret, 64, image.DEFAULT_FPR, False)
            search = image._Search(y, tabs)
            nominal = image.TILE * image._chip_size(min(hh, ww)) * s
            found = (det.details["period_px"] * s, float(np.radians(det.details["rotation_deg"])))
            for period, theta in ((nominal, 0.0), found):
                z, shift, flip, f = search.evaluate(period, theta)
                tiles.append(f)
                ref.append((z, *shift, float(flip)))
    t = dev(np.stack(tiles))
    spectra = dev(gpu._sync_spectra(secret, 64))
    out = torch.empty((len(tiles), 4), dtype=torch.float64, device="cuda")
    _core.cuda_image_sync(t.data_ptr(), len(tiles), spectra.data_ptr(), out.data_ptr())
    got, want = host(out), np.array(ref)
    np.testing.assert_array_equal(got[:, 1:], want[:, 1:])
    np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5)
    assert want[:, 3].any() and want[:, 0].max() > 8


@pytest.mark.parametrize("full_search", [False, True])
def test_device_search_equals_host_engine(full_search: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """gpu.image_detect (sync statistics on the device, tiles copied only for decoding) against image._detect_work
    with the host engine on the same working-size luma: same decisions, payloads, hypothesis and decode counts,
    geometry; z to 1e-3 (the device whitening and fold differ from the CPU's by float rounding)."""
    copies: list[tuple[int, ...]] = []
    orig = _core.cuda_copy_to_host

    def spy(src: int, dst: np.ndarray, stream: int = 0) -> None:
        copies.append(dst.shape)
        orig(src, dst, stream)

    monkeypatch.setattr(_core, "cuda_copy_to_host", spy)
    secret = FIXED.secret_bytes()
    for name in PHOTOS:
        m = image.embed(PHOTOS[name](), 0x0123456789ABCDEF, FIXED)
        h, w = m.shape[:2]
        for x in (m, np.ascontiguousarray(m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]), PHOTOS[name]()):
            y = gpu.work_luma(dev(x))[0]
            copies.clear()
            det = gpu.image_detect(dev(x), FIXED, full_search=full_search)
            ref = image._detect_work(image._HostPlanes(y), *x.shape[:2], secret, 64, image.DEFAULT_FPR, full_search)
            assert (det.found, det.payload) == (ref.found, ref.payload), name
            for k in ("hypotheses", "decodes", "flipped", "crc_ok"):
                assert det.details[k] == ref.details[k], (name, k)
            for k in ("period_px", "scale", "rotation_deg"):
                assert det.details[k] == pytest.approx(ref.details[k], rel=1e-6), (name, k)
            assert det.score == pytest.approx(ref.score, rel=1e-3), name
            assert copies.count((128, 128)) <= det.details["decodes"], name  # single tiles: decoded ones only
            assert y.shape not in copies, name  # the lattice search ran on the device: no whitened plane came down


def test_lattice_candidates_match_host() -> None:
    """cuda_image_lattice_scores (the device's mixed-radix float32 FFTs at the host's sizes, flattening, inverse
    FFT and scores) against image._lattice_candidates on the whitened working pictures of real photos (marked,
    cropped to 25 %, rotated 3 degrees, unmarked; 2x upscales): the same 8 candidates, scores within 1e-4 of the
    largest (on host threads the kernel source agrees to 1e-6, tests/test_cuda_math.py)."""
    from skimage import transform

    for name in PHOTOS:
        m = image.embed(PHOTOS[name](), 0x0123456789ABCDEF, FIXED)
        h, w = m.shape[:2]
        for x in (m, m[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2],
                  transform.rotate(m, 3.0, mode="reflect").astype(np.float32), PHOTOS[name](), big(m)):  # fmt: skip
            x = np.ascontiguousarray(x)
            hh, ww = x.shape[:2]
            hw, wwk, s = image._work_shape(hh, ww)
            y = _core.image_luma_work(x, hw, wwk)
            prior = image.TILE * image._chip_size(min(hh, ww)) * s
            wv = image._Search(y, None).whitened(prior / image.TILE)  # type: ignore[arg-type]
            fh, fw, sigma, rows, cols, pgrid, tgrid = image._lattice_plan(hw, wwk, s)  # type: ignore[misc]
            got = _core.cuda_image_lattice_scores(
                dev(wv).data_ptr(), hw, wwk, fh, fw, *sigma, rows.astype(np.uint8), cols.astype(np.uint8), pgrid,
                tgrid,
            )  # fmt: skip
            ref = image._lattice_candidates(wv, image.N_CANDIDATES, s)
            assert image._lattice_pick(got.copy(), pgrid, tgrid, image.N_CANDIDATES) == ref, (name, x.shape)
            sc = image._lattice_scores(wv, fh, fw, sigma, rows, cols, pgrid, tgrid)
            assert np.abs(got - sc).max() < 1e-4 * np.abs(sc).max(), (name, x.shape)
