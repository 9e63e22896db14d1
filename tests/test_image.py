"""Image watermark: round trips, input forms, keys, payloads, determinism, fast attacks, bad input."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import skimage.data
from PIL import Image

import provmark as pm

PAYLOAD = bytes.fromhex("0123456789abcdef")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def key() -> pm.Key:
    return pm.Key.from_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def marked(astronaut: np.ndarray, key: pm.Key) -> np.ndarray:
    return pm.image.embed(astronaut, PAYLOAD, key)


# ---- round trips ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,crop",
    [
        ("astronaut", None),
        ("coffee", None),
        ("chelsea", (299, 451)),  # odd sizes
        ("rocket", (427, 333)),
        ("camera", (257, 511)),
    ],
)
def test_round_trip_sizes(name: str, crop: tuple[int, int] | None, key: pm.Key) -> None:
    img = getattr(skimage.data, name)()
    if crop:
        img = np.ascontiguousarray(img[: crop[0], : crop[1]])
    m = pm.image.embed(img, PAYLOAD, key)
    assert m.shape == img.shape and m.dtype == img.dtype
    assert psnr(img, m) >= 42.0
    det = pm.image.detect(m, key)
    assert det.found and det.payload == PAYLOAD
    assert det.p_value < 1e-6
    assert abs(det.details["scale"] - 1.0) < 0.02 and abs(det.details["rotation_deg"]) < 0.5
    assert not det.details["flipped"]


def test_large_picture_round_trip(key: pm.Key) -> None:
    img = np.asarray(Image.fromarray(skimage.data.coffee()).resize((1500, 1000), Image.BICUBIC))
    m = pm.image.embed(img, PAYLOAD, key)
    assert psnr(img, m) >= 42.0
    det = pm.image.detect(m, key)
    assert det.found and det.payload == PAYLOAD


def test_imperceptibility_flat_area(key: pm.Key) -> None:
    # a flat grey picture with one textured square: the flat part gets only the mask's floor
    rng = np.random.default_rng(0)
    img = np.full((256, 256, 3), 128, np.uint8)
    img[64:192, 64:192] = rng.integers(60, 200, (128, 128, 1), dtype=np.uint8)
    m = pm.image.embed(img, PAYLOAD, key)
    d = m.astype(np.int16) - img.astype(np.int16)
    flat = np.abs(d[:40, :40]).astype(float)
    tex = np.abs(d[80:176, 80:176]).astype(float)
    assert flat.mean() < tex.mean() / 2
    assert np.abs(d).max() <= 30


def test_payload_forms_and_detection_details(astronaut: np.ndarray, marked: np.ndarray, key: pm.Key) -> None:
    as_int = pm.image.embed(astronaut, int.from_bytes(PAYLOAD, "big"), key)
    as_obj = pm.image.embed(astronaut, pm.Payload(PAYLOAD), key)
    assert np.array_equal(as_int, marked) and np.array_equal(as_obj, marked)
    det = pm.image.detect(marked, key)
    for k in ("scale", "rotation_deg", "shift_px", "flipped", "period_px", "timings_ms", "hypotheses"):
        assert k in det.details
    assert det.details["timings_ms"]["total"] > 0
    assert det.score > 6


def test_determinism_and_threads(astronaut: np.ndarray, marked: np.ndarray, key: pm.Key) -> None:
    before = pm.get_num_threads()
    try:
        pm.set_num_threads(1)
        one = pm.image.embed(astronaut, PAYLOAD, key)
        d1 = pm.image.detect(marked, key)
        pm.set_num_threads(2)
        two = pm.image.embed(astronaut, PAYLOAD, key)
        d2 = pm.image.detect(marked, key)
    finally:
        pm.set_num_threads(before)
    assert np.array_equal(one, marked) and np.array_equal(two, marked)
    assert d1.score == d2.score and d1.payload == d2.payload


def test_two_payloads_same_key_differ(astronaut: np.ndarray, marked: np.ndarray, key: pm.Key) -> None:
    other = bytes.fromhex("fedcba9876543210")
    m2 = pm.image.embed(astronaut, other, key)
    assert not np.array_equal(m2, marked)
    assert pm.image.detect(m2, key).payload == other
    assert pm.image.detect(marked, key).payload == PAYLOAD


def test_wrong_key_and_unmarked_not_found(astronaut: np.ndarray, marked: np.ndarray, key: pm.Key) -> None:
    other = pm.Key.from_bytes(bytes(range(1, 33)))
    for img, k in ((marked, other), (astronaut, key), (skimage.data.coffee(), key)):
        det = pm.image.detect(img, k)
        assert not det.found and det.payload is None
        assert det.p_value > 1e-4
    # two keys coexist: mark with both, each finds its own payload
    p2 = bytes.fromhex("1111222233334444")
    both = pm.image.embed(marked, p2, other)
    assert pm.image.detect(both, other).payload == p2
    assert pm.image.detect(both, key).payload == PAYLOAD


# ---- input forms -----------------------------------------------------------------------------------------
def test_gray_rgba_and_channel_axis(key: pm.Key) -> None:
    gray = skimage.data.camera()
    m = pm.image.embed(gray, PAYLOAD, key)
    assert m.shape == gray.shape and m.dtype == np.uint8
    assert pm.image.detect(m, key).payload == PAYLOAD
    g1 = pm.image.embed(gray[..., None], PAYLOAD, key)
    assert g1.shape == (512, 512, 1) and np.array_equal(g1[..., 0], m)

    rgb = skimage.data.coffee()
    alpha = np.random.default_rng(1).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    mr = pm.image.embed(rgba, PAYLOAD, key)
    assert mr.shape == rgba.shape
    assert np.array_equal(mr[..., 3], alpha)
    assert pm.image.detect(mr, key).payload == PAYLOAD


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_input(dtype: type, astronaut: np.ndarray, key: pm.Key) -> None:
    f = (astronaut / 255.0).astype(dtype)
    m = pm.image.embed(f, PAYLOAD, key)
    assert m.dtype == dtype and m.shape == f.shape
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert pm.image.detect(m, key).payload == PAYLOAD
    # float and uint8 paths give the same delta up to rounding
    u8 = np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8)
    assert pm.image.detect(u8, key).payload == PAYLOAD


def test_pil_input(astronaut: np.ndarray, key: pm.Key) -> None:
    for mode in ("RGB", "L", "RGBA"):
        im = Image.fromarray(astronaut).convert(mode)
        out = pm.image.embed(im, PAYLOAD, key)
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == im.size
        assert pm.image.detect(out, key).payload == PAYLOAD


def test_torch_input(astronaut: np.ndarray, key: pm.Key) -> None:
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(np.moveaxis(astronaut, -1, 0).copy())  # uint8 [3, H, W]
    out = pm.image.embed(t, PAYLOAD, key)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8 and tuple(out.shape) == tuple(t.shape)
    assert pm.image.detect(out, key).payload == PAYLOAD
    tf = t.float() / 255.0
    outf = pm.image.embed(tf, PAYLOAD, key)
    assert outf.dtype == torch.float32 and tuple(outf.shape) == (3, 512, 512)
    assert pm.image.detect(outf, key).payload == PAYLOAD
    batch = torch.stack([tf, tf.flip(-1)])  # [2, 3, H, W]
    outb = pm.image.embed(batch, PAYLOAD, key)
    assert tuple(outb.shape) == (2, 3, 512, 512)
    dets = pm.image.detect(outb, key)
    assert [d.payload for d in dets] == [PAYLOAD, PAYLOAD]


def test_batch_api(key: pm.Key) -> None:
    imgs = np.stack([skimage.data.astronaut(), skimage.data.astronaut()[::-1].copy()])
    pls = [PAYLOAD, bytes(8)]
    out = pm.image.embed_batch(imgs, pls, key)
    assert out.shape == imgs.shape
    single = [pm.image.embed(imgs[i], pls[i], key) for i in range(2)]
    assert all(np.array_equal(out[i], single[i]) for i in range(2))
    dets = pm.image.detect_batch(out, key)
    assert [d.payload for d in dets] == pls
    as_list = pm.image.embed_batch(list(imgs), PAYLOAD, key)
    assert isinstance(as_list, list) and len(as_list) == 2
    with pytest.raises(ValueError):
        pm.image.embed_batch([imgs[0], imgs[0][:500]], PAYLOAD, key)
    with pytest.raises(ValueError):
        pm.image.embed_batch(imgs, [PAYLOAD], key)


def test_strength(astronaut: np.ndarray, key: pm.Key) -> None:
    weak = pm.image.embed(astronaut, PAYLOAD, key, strength=0.5)
    strong = pm.image.embed(astronaut, PAYLOAD, key, strength=2.0)
    assert psnr(astronaut, weak) > psnr(astronaut, strong) + 4.0


# ---- fast attacks (regression guards; the full matrix is benchmarks/image_robustness.py) ---------------
def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def _resize(a: np.ndarray, s: float) -> np.ndarray:
    h, w = a.shape[:2]
    return np.asarray(Image.fromarray(a).resize((round(w * s), round(h * s)), Image.BICUBIC))


def _crop(a: np.ndarray, area: float, y0f: float, x0f: float) -> np.ndarray:
    h, w = a.shape[:2]
    s = math.sqrt(area)
    ch, cw = round(h * s), round(w * s)
    y0, x0 = round((h - ch) * y0f), round((w - cw) * x0f)
    return np.ascontiguousarray(a[y0 : y0 + ch, x0 : x0 + cw])


def _rotate(a: np.ndarray, deg: float) -> np.ndarray:
    h, w = a.shape[:2]
    r = np.asarray(Image.fromarray(a).rotate(deg, resample=Image.BICUBIC))
    t = math.radians(abs(deg))
    k = min(w / (w * math.cos(t) + h * math.sin(t)), h / (w * math.sin(t) + h * math.cos(t)))
    cw, ch = int(w * k) - 2, int(h * k) - 2
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return np.ascontiguousarray(r[y0 : y0 + ch, x0 : x0 + cw])


ATTACKS = {
    "jpeg50": lambda a: _jpeg(a, 50),
    "resize0.5": lambda a: _resize(a, 0.5),
    "crop50": lambda a: _crop(a, 0.5, 0.8, 0.3),
    "rotate3": lambda a: _rotate(a, 3.0),
    "flip": lambda a: np.ascontiguousarray(a[:, ::-1]),
}


@pytest.mark.parametrize("photo", ["astronaut", "coffee", "camera"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_fast_attacks(photo: str, attack: str, key: pm.Key) -> None:
    img = getattr(skimage.data, photo)()
    m = pm.image.embed(img, PAYLOAD, key)
    a = ATTACKS[attack](m)
    det = pm.image.detect(a, key)
    assert det.found, det.details
    assert det.payload == PAYLOAD
    if attack == "rotate3":
        assert abs(det.details["rotation_deg"] + 3.0) < 0.5
    if attack == "resize0.5":
        assert abs(det.details["period_px"] / pm.image.detect(m, key).details["period_px"] - 0.5) < 0.01
    if attack == "flip":
        assert det.details["flipped"]
    # the same attack on the unmarked photo finds nothing
    assert not pm.image.detect(ATTACKS[attack](img), key).found


# ---- bad input -------------------------------------------------------------------------------------------
def test_crop_reliability_weighted_read(key: pm.Key) -> None:
    """A 25 % crop whose equal-weight read fails plain Viterbi at the true geometry and whose
    reliability-weighted read (each pixel weighted by 1 / local residual power) decodes; the detector (whose
    list decoder may already get the equal-weight read) finds it, and every CRC check counts in the p-value."""
    from provmark import image as I

    m = pm.image.embed(skimage.data.astronaut(), PAYLOAD, key)
    a = _crop(m, 0.25, 0.0, 0.0)
    tabs = I._tables(key.secret_bytes(), 64)
    period = I.TILE * I._chip_size(512)  # the uncropped picture's period: a crop keeps the scale
    search = I._Search(I._resample(I._luma(a), *a.shape[:2]), tabs)
    _z, shift, flip, f = search.evaluate(period, 0.0)

    def read(folded: np.ndarray) -> pm.Payload | None:
        soft = tabs.soft(I._align(folded, shift, flip))
        return pm.Payload.decode((soft / soft.std()).astype(np.float32))

    assert read(f) is None
    assert read(I._fold(search.reliability_weighted(period / I.TILE), period, 0.0)) == pm.Payload(PAYLOAD)
    det = pm.image.detect(a, key)
    assert det.found and det.payload == PAYLOAD, det.details
    assert det.details["crc_checks"] >= 2  # the plain Viterbi path failed its CRC, then another passed
    assert det.p_value >= det.details["crc_checks"] * 2.0**-32 * I._p_sync(det.score, det.details["hypotheses"]) * 0.999


def test_crop_scan_finds_lattice_the_autocorrelation_misses(key: pm.Key) -> None:
    """A 25 % crop of a 512 px photo: the lattice candidates miss its period (4/3 of the crop's nominal one,
    whose chip is floored at 2 px); the scan of unrotated periods finds it. Unmarked, the same scan finds nothing."""
    img = skimage.data.astronaut()
    a = _crop(pm.image.embed(img, PAYLOAD, key), 0.25, 0.6, 0.3)
    det = pm.image.detect(a, key)
    assert det.found and det.payload == PAYLOAD, det.details
    assert abs(det.details["scale"] - 4.0 / 3.0) < 0.02
    assert abs(det.details["rotation_deg"]) < 1e-9
    unmarked = pm.image.detect(_crop(img, 0.25, 0.6, 0.3), key)
    assert not unmarked.found and unmarked.details["hypotheses"] > 20


@pytest.mark.parametrize(
    "bad,exc",
    [
        (np.zeros((0, 0, 3), np.uint8), ValueError),
        (np.zeros((1, 1, 3), np.uint8), ValueError),
        (np.zeros((8, 8), np.uint8), ValueError),
        (np.zeros((40, 512, 3), np.uint8), ValueError),  # too small to embed
        (np.full((128, 128, 3), np.nan, np.float32), ValueError),
        (np.full((128, 128, 3), 2.0, np.float32), ValueError),
        (np.zeros((128, 128, 3), np.int16), TypeError),
        (np.zeros((128, 128, 3), bool), TypeError),
        (np.zeros((128, 128, 2), np.uint8), ValueError),
        (np.zeros((2, 128, 128, 3), np.uint8), ValueError),
        (np.zeros(128, np.uint8), ValueError),
        ([[1, 2], [3, 4]], TypeError),
        ("image.png", TypeError),
    ],
)
def test_bad_images_embed(bad: object, exc: type, key: pm.Key) -> None:
    with pytest.raises(exc):
        pm.image.embed(bad, PAYLOAD, key)


@pytest.mark.parametrize(
    "bad,exc",
    [
        (np.zeros((0, 5), np.uint8), ValueError),
        (np.zeros((1, 1), np.uint8), ValueError),
        (np.zeros((8, 8, 3), np.uint8), ValueError),
        (np.full((64, 64), np.inf, np.float64), ValueError),
        (np.zeros((64, 64), np.uint16), TypeError),
        (None, TypeError),
    ],
)
def test_bad_images_detect(bad: object, exc: type, key: pm.Key) -> None:
    with pytest.raises(exc):
        pm.image.detect(bad, key)


def test_bad_arguments(astronaut: np.ndarray, key: pm.Key) -> None:
    with pytest.raises(TypeError):
        pm.image.embed(astronaut, PAYLOAD, b"k" * 32)
    with pytest.raises(ValueError):
        pm.image.embed(astronaut, b"1", key)  # 8-bit payload: below the 16-bit minimum
    with pytest.raises(TypeError):
        pm.image.embed(astronaut, 1.5, key)
    with pytest.raises(ValueError):
        pm.image.embed(astronaut, PAYLOAD, key, strength=0.0)
    with pytest.raises(ValueError):
        pm.image.embed(astronaut, PAYLOAD, key, strength=float("nan"))
    with pytest.raises(ValueError):
        pm.image.detect(astronaut, key, fpr=0.0)
    with pytest.raises(ValueError):
        pm.image.detect(astronaut, key, fpr=2.0)


def test_flat_and_constant_pictures(key: pm.Key) -> None:
    # no texture at all: embedding still works (mask floor) and detection does not crash
    for v in (0, 128, 255):
        img = np.full((200, 300, 3), v, np.uint8)
        m = pm.image.embed(img, PAYLOAD, key)
        assert m.shape == img.shape
        det = pm.image.detect(img, key)
        assert not det.found
    assert pm.image.detect(pm.image.embed(np.full((200, 300, 3), 128, np.uint8), PAYLOAD, key), key).found


# ---- prepared per-size embedder (video frames) ---------------------------------------------------------
def _ref_mark(emb: pm.image.LumaEmbedder, a: np.ndarray) -> np.ndarray:
    """numpy reference of LumaEmbedder.mark with its (already set) amplitudes: mask, pattern, RMS, add."""
    pmi = pm.image
    tile = emb._tabs.tile(emb._coded, emb.factors)
    d = pmi._ref_mask(pmi._ref_luma(a)) * pmi._ref_pattern(emb.height, emb.width, tile, emb.chip)
    d *= np.float32(1.75 * emb.strength / np.sqrt(np.mean(d.astype(np.float64) ** 2)))
    return pmi._ref_apply(a, d)


def test_luma_embedder_first_plane_equals_embed_and_reuses_amplitudes(key: pm.Key) -> None:
    cam = skimage.data.camera()  # 512 x 512 grey
    other = skimage.data.astronaut()[..., 1]  # another host of the same size
    emb = pm.image.LumaEmbedder(512, 512, PAYLOAD, key, informed="first")
    assert emb.factors is None
    first = emb.mark(cam)
    assert np.array_equal(first, pm.image.embed(cam, PAYLOAD, key))
    f0 = emb.factors.copy()
    assert f0.shape == (pm.Payload.coded_length(64),) and np.all((f0 >= 0.3) & (f0 <= 3.0))
    second = emb.mark(other)
    assert np.array_equal(emb.factors, f0)  # set once, from the first plane
    assert not np.array_equal(second, pm.image.embed(other, PAYLOAD, key))  # not re-informed on this host
    diff = np.abs(second.astype(int) - _ref_mark(emb, other).astype(int))
    assert diff.max() <= 1 and np.mean(diff) < 0.01  # native kernels vs numpy reference: rounding only
    assert pm.image.detect(second, key).payload == PAYLOAD


def test_luma_embedder_without_informed_step(key: pm.Key, astronaut: np.ndarray) -> None:
    emb = pm.image.LumaEmbedder(512, 512, PAYLOAD, key, strength=1.5, informed="off")
    grey = skimage.data.camera()
    out = emb.mark(grey)
    ref = pm.image._embed_array(grey, pm.Payload(PAYLOAD), key.secret_bytes(), 1.5, informed=False)
    assert np.array_equal(out, ref)
    assert emb.factors is None
    assert np.abs(out.astype(int) - _ref_mark(emb, grey).astype(int)).max() <= 1
    rgb = emb.mark(astronaut)  # RGB: the same delta on R, G and B, as image.embed
    assert rgb.shape == astronaut.shape and rgb.dtype == np.uint8
    assert np.array_equal(rgb, pm.image._embed_array(astronaut, pm.Payload(PAYLOAD), key.secret_bytes(), 1.5, False))
    det = pm.image.detect(out, key)
    assert det.found and det.payload == PAYLOAD


def test_luma_embedder_high_bit_depth(key: pm.Key) -> None:
    cam = skimage.data.camera()
    y10 = (cam.astype(np.uint16) * 4 + 1).astype(np.uint16)  # 10-bit samples
    emb = pm.image.LumaEmbedder(512, 512, PAYLOAD, key, informed="off")
    out = emb.mark(y10, bit_depth=10)
    assert out.dtype == np.uint16 and out.shape == y10.shape and int(out.max()) <= 1023
    via_float = emb.mark(y10.astype(np.float32) / np.float32(1023))
    assert np.array_equal(out, np.clip(np.rint(via_float * np.float32(1023)), 0, 1023).astype(np.uint16))
    d = (out.astype(np.float64) - y10) / 4.0  # in 8-bit grey levels
    assert 1.0 < np.sqrt(np.mean(d * d)) < 2.5
    assert pm.image.detect((out / 1023.0).astype(np.float32), key).payload == PAYLOAD
    with pytest.raises(ValueError, match="exceed 10 bits"):
        emb.mark(np.full((512, 512), 1024, np.uint16), bit_depth=10)


def test_luma_embedder_flat_limit(key: pm.Key, monkeypatch: pytest.MonkeyPatch) -> None:
    """flat_rms moves the mark off flat pixels onto textured ones, by texture (native = numpy reference path,
    1 LSB); the detector reads it as before."""
    moon = (skimage.data.moon().astype(np.float32) * np.float32(0.8) + np.float32(20)).astype(np.uint8)
    m = pm.image._ref_mask(pm.image._ref_luma(moon))
    flat, near = pm.image._ref_mask_floor(m), (m > 1.0) & (m <= 1.3)
    plain = pm.image.LumaEmbedder(512, 512, PAYLOAD, key, informed="off")
    limited = pm.image.LumaEmbedder(512, 512, PAYLOAD, key, informed="off", flat_rms=0.7)
    assert plain.flat_rms is None and limited.flat_rms == 0.7
    a, b = plain.mark(moon).astype(np.float64) - moon, limited.mark(moon).astype(np.float64) - moon

    def rms(v: np.ndarray) -> float:
        return float(np.sqrt(np.mean(v**2)))

    assert rms(a[flat]) > 1.2 and rms(b[flat]) < 0.85  # 0.7 before rounding to grey levels
    assert rms(b[~flat]) > 1.15 * rms(a[~flat]) and rms(b) == pytest.approx(rms(a), rel=0.05)
    assert rms(b[near]) < 0.8 * rms(a[near])  # the energy goes by texture: near-flat pixels get less, not more
    det = pm.image.detect(limited.mark(moon), key)
    assert det.found and det.payload == PAYLOAD
    native = limited.mark(moon)
    monkeypatch.setattr(pm.image, "_NATIVE", False)
    diff = np.abs(limited.mark(moon).astype(int) - native)
    assert diff.max() <= 1 and diff.mean() < 1e-3
    for bad, err in ((0.0, ValueError), (float("nan"), ValueError), ("0.7", TypeError), (True, TypeError)):
        with pytest.raises(err, match="flat_rms"):
            pm.image.LumaEmbedder(512, 512, PAYLOAD, key, flat_rms=bad)


def test_luma_embedder_bad_input(key: pm.Key) -> None:
    emb = pm.image.LumaEmbedder(128, 96, PAYLOAD, key)
    with pytest.raises(ValueError, match="shape"):
        emb.mark(np.zeros((96, 127), np.uint8))
    with pytest.raises(TypeError, match="dtype"):
        emb.mark(np.zeros((96, 128), np.int32))
    with pytest.raises(TypeError, match="numpy"):
        emb.mark([[0] * 128] * 96)
    with pytest.raises(ValueError, match="bit_depth"):
        emb.mark(np.zeros((96, 128), np.uint16))
    with pytest.raises(ValueError, match="bit_depth"):
        emb.mark(np.zeros((96, 128), np.uint8), bit_depth=10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        emb.mark(np.full((96, 128), 2.0, np.float32))
    with pytest.raises(ValueError, match="informed"):
        pm.image.LumaEmbedder(128, 96, PAYLOAD, key, informed="every")
    with pytest.raises(ValueError, match="at least"):
        pm.image.LumaEmbedder(32, 96, PAYLOAD, key)
    with pytest.raises(ValueError, match="height"):
        pm.image.LumaEmbedder(128, 0, PAYLOAD, key)
    with pytest.raises(TypeError, match="Key"):
        pm.image.LumaEmbedder(128, 96, PAYLOAD, b"0" * 32)
    with pytest.raises(ValueError, match="strength"):
        pm.image.LumaEmbedder(128, 96, PAYLOAD, key, strength=0.0)
