"""Parity of the C++ image kernels (csrc/core/image_*.cpp) with their numpy references in provmark.image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data

import provmark as pm
from provmark import _core
from provmark import image as pmi

pytestmark = pytest.mark.skipif(not pmi._NATIVE, reason="native image kernels not built")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[:301, :437])  # odd sizes hit the loop tails


@pytest.fixture(scope="module")
def y(photo: np.ndarray) -> np.ndarray:
    return pmi._ref_luma(photo)


def _variants(photo: np.ndarray) -> list[np.ndarray]:
    alpha = np.full(photo.shape[:2], 77, np.uint8)
    return [
        photo,
        np.ascontiguousarray(photo[..., 1]),
        np.ascontiguousarray(photo[..., :1]),
        np.dstack([photo, alpha]),
        (photo / 255.0).astype(np.float32),
        photo / 255.0,
    ]


def test_luma(photo: np.ndarray) -> None:
    for a in _variants(photo):
        ref = pmi._ref_luma(a if a.ndim == 2 or a.shape[2] != 1 else a[..., 0])
        np.testing.assert_allclose(_core.image_luma(a), ref, rtol=1e-6, atol=1e-4)
    batch = np.stack([photo, photo[::-1]])
    out = _core.image_luma(batch, True)
    assert out.shape == (2, *photo.shape[:2])
    np.testing.assert_array_equal(out[1], _core.image_luma(np.ascontiguousarray(photo[::-1])))
    gray = np.stack([photo[..., 0], photo[..., 1]])  # [2, H, W]: a batch of grey pictures
    np.testing.assert_array_equal(_core.image_luma(gray, True), gray.astype(np.float32))


def test_mask_resample_whiten_fold(y: np.ndarray) -> None:
    np.testing.assert_allclose(_core.image_mask(y), pmi._ref_mask(y), atol=1e-4)
    for oh, ow in ((301, 437), (150, 218), (97, 401), (1, 1)):
        np.testing.assert_allclose(_core.image_resample(y, oh, ow), pmi._ref_resample(y, oh, ow), atol=2e-3)
    for c in (0.5, 1.3, 2.67, 5.0):
        w, den = _core.image_whiten(y, c)
        wr, denr = pmi._ref_whiten(y, c)
        np.testing.assert_allclose(den, denr, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(w, wr, atol=5e-4 * np.abs(wr).max())
        w2, _ = _core.image_whiten(y, c, denr)
        np.testing.assert_allclose(w2, pmi._ref_whiten(y, c, denr)[0], atol=5e-4 * np.abs(wr).max())
    w = pmi._ref_whiten(y, 2.0)[0]
    for period, theta in ((85.3, 0.0), (64.0, 0.0), (71.7, 0.061), (120.2, -0.09)):
        np.testing.assert_allclose(_core.image_fold(w, period, theta), pmi._ref_fold(w, period, theta), atol=1e-9)


def test_embed_apply(photo: np.ndarray, y: np.ndarray) -> None:
    tile = np.random.default_rng(3).normal(size=(32, 32)).astype(np.float32)
    m = pmi._ref_mask(y)
    d = m * pmi._ref_pattern(*photo.shape[:2], tile, 2.3)
    d *= np.float32(1.75 / np.sqrt(np.mean(d.astype(np.float64) ** 2)))
    for a in _variants(photo):
        a2 = a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a
        out = _core.image_embed_apply(np.ascontiguousarray(a2), m, tile, 2.3, 1.75)
        ref = pmi._ref_apply(a2, d)
        assert out.dtype == a2.dtype and out.shape == a2.shape
        diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        if a2.dtype == np.uint8:
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # rounding ties only
        else:
            assert diff.max() < 1e-5
        if a2.ndim == 3 and a2.shape[2] == 4:
            np.testing.assert_array_equal(out[..., 3], a2[..., 3])
    # a batch in one call equals the single calls
    batch = np.stack([photo, photo[::-1]])
    masks = np.stack([m, pmi._ref_mask(pmi._ref_luma(np.ascontiguousarray(photo[::-1])))])
    tiles = np.stack([tile, -tile])
    outb = _core.image_embed_apply(batch, masks, tiles, 2.3, 1.75)
    for i in range(2):
        single = _core.image_embed_apply(np.ascontiguousarray(batch[i]), masks[i], tiles[i], 2.3, 1.75)
        np.testing.assert_array_equal(outb[i], single)


def test_kernels_deterministic_across_threads(y: np.ndarray) -> None:
    before = pm.get_num_threads()
    try:
        outs = []
        for n in (1, 3):
            pm.set_num_threads(n)
            w, _ = _core.image_whiten(y, 2.3)
            outs.append((_core.image_mask(y), w, _core.image_fold(w, 77.0, 0.03)))
    finally:
        pm.set_num_threads(before)
    for a, b in zip(*outs, strict=False):
        np.testing.assert_array_equal(a, b)


def test_native_argument_errors(y: np.ndarray) -> None:
    tile = np.zeros((32, 32), np.float32)
    img = np.zeros((64, 64, 3), np.uint8)
    m = np.ones((64, 64), np.float32)
    with pytest.raises(ValueError):
        _core.image_luma(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError):
        _core.image_luma(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError):
        _core.image_luma(np.zeros((8, 8, 3), np.uint8)[:, ::2])
    with pytest.raises(ValueError):
        _core.image_resample(y, y.shape[0] + 1, 5)
    with pytest.raises(TypeError):
        _core.image_mask(y.astype(np.float64))
    with pytest.raises(ValueError):
        _core.image_whiten(y, 0.0)
    with pytest.raises(ValueError):
        _core.image_whiten(y, 2.0, np.ones((3, 3), np.float32))
    with pytest.raises(ValueError):
        _core.image_fold(y, -1.0, 0.0)
    with pytest.raises(ValueError):
        _core.image_embed_apply(img, np.ones((63, 64), np.float32), tile, 2.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_embed_apply(img, m, np.zeros((16, 16), np.float32), 2.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_embed_apply(img, m, tile, float("nan"), 1.0)


def test_unpickled_arrays_are_accepted() -> None:
    """Arrays sent between processes carry equal but distinct dtype objects (a bug once rejected them)."""
    import pickle

    import provmark as pm

    img = np.random.default_rng(3).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    key = pm.Key.generate()
    a = pm.image.embed(pickle.loads(pickle.dumps(img)), 7, key)
    np.testing.assert_array_equal(a, pm.image.embed(img, 7, key))
    y = pickle.loads(pickle.dumps(np.random.default_rng(4).random((64, 64), dtype=np.float32)))
    np.testing.assert_array_equal(_core.image_mask(y), _core.image_mask(y.copy()))


# ---- fused embedder and lattice stages (csrc/core/image_fused.*, image_lattice.*, image_kernels_*) -------------
LEVELS = ["baseline"] + (["avx2"] if _core.simd_level_supported() == "avx2" else [])


@pytest.fixture(params=LEVELS)
def simd(request: pytest.FixtureRequest):
    old = _core.simd_level()
    _core.set_simd_level(request.param)
    try:
        yield request.param
    finally:
        _core.set_simd_level(old)


def test_fused_embed_matches_unfused_reference(photo: np.ndarray, simd: str) -> None:
    """image_embed_analyse + image_embed_fused == image_luma -> image_mask -> image_embed_apply within 1 LSB."""
    tile = np.random.default_rng(5).normal(size=(32, 32)).astype(np.float32)
    for a in _variants(photo):
        a2 = np.ascontiguousarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a)
        m = _core.image_mask(_core.image_luma(a2))
        q, yw, mw = _core.image_embed_analyse(a2)
        assert q.dtype == np.uint16 and q.shape == a2.shape[:2] and yw is None and mw is None
        np.testing.assert_allclose(1.0 + q.astype(np.float32) / 21845.0, m, atol=3e-5)  # quantisation step 4.6e-5
        ref = _core.image_embed_apply(a2, m, tile, 2.3, 1.75)
        out = _core.image_embed_fused(a2, q, tile, 2.3, 1.75)
        assert out.dtype == a2.dtype and out.shape == a2.shape
        diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        if a2.dtype == np.uint8:
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # rounding ties only
        else:
            assert diff.max() < 1e-5
        assert np.abs(out.astype(np.float64) - a2).max() > 0  # it did add something
        if a2.ndim == 3 and a2.shape[2] == 4:
            np.testing.assert_array_equal(out[..., 3], a2[..., 3])


def test_fused_flat_limit(simd: str) -> None:
    """flat_rms: the delta p (g_floor + g_excess e) (p the pattern, e the mask's excess over its floor) puts the
    limit's RMS on the flat pixels (mask quantised to 0) and keeps the total RMS at the target, the excess's gain
    within [g, 2 g]; as the numpy reference (_ref_flat_gains)."""
    moon = skimage.data.moon()[:301, :437].astype(np.float32)  # 60 % flat pixels; kept off 0 and 1 (no clipping)
    cases = {
        "moon": (moon * np.float32(0.8) + np.float32(20)) / np.float32(255),
        # one textured patch in a flat frame: the excess's gain reaches its cap of 2 g
        "patch": np.pad(moon[100:160, 100:180], ((120, 121), (180, 177)), constant_values=100.0) / np.float32(255),
    }
    tile = np.random.default_rng(9).normal(size=(32, 32)).astype(np.float32)
    for name, y in cases.items():
        y = np.ascontiguousarray(y)
        q = _core.image_embed_analyse(y)[0]
        flat = q == 0
        ex = q.astype(np.float32) / np.float32(21845)
        p = pmi._ref_pattern(*y.shape, tile, 2.3)
        plain = _core.image_embed_fused(y, q, tile, 2.3, 1.75)
        g = 1.75 / float(np.sqrt(np.mean(((1 + ex) * p).astype(np.float64) ** 2)))
        flat_plain = g * float(np.sqrt(np.mean(p[flat].astype(np.float64) ** 2)))
        assert 0.2 < flat.mean() < 0.99 and flat_plain > 1.0, name
        for limit in (0.7, 0.3):
            out = _core.image_embed_fused(y, q, tile, 2.3, 1.75, limit)
            delta = (out.astype(np.float64) - y) * 255.0
            gf, gx = pmi._ref_flat_gains(p, 1 + ex, 1.75, limit)
            np.testing.assert_allclose(delta, p * (gf + gx * ex), rtol=0, atol=2e-3)
            assert np.sqrt(np.mean(delta[flat] ** 2)) == pytest.approx(limit, rel=1e-3)
            assert g < gx <= 2 * g * (1 + 1e-9)
            total = np.sqrt(np.mean(delta**2))
            if name == "moon":  # the energy moved to the textured pixels: the total RMS kept
                assert gx < 2 * g * 0.999 and total == pytest.approx(1.75, rel=1e-3)
            else:  # capped: the total falls short
                assert gx == pytest.approx(2 * g, rel=1e-6) and total < 1.75 * 0.99
        # a limit above the flat pixels' RMS changes nothing
        np.testing.assert_allclose(_core.image_embed_fused(y, q, tile, 2.3, 1.75, flat_plain * 1.01), plain, atol=1e-6)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="flat_rms"):
            _core.image_embed_fused(y, q, tile, 2.3, 1.75, bad)


def test_fused_analyse_working_planes(photo: np.ndarray, simd: str) -> None:
    y = _core.image_luma(photo)
    m = _core.image_mask(y)
    for oh, ow in ((301, 437), (150, 218), (97, 401), (300, 5), (1, 1)):
        q, yw, mw = _core.image_embed_analyse(photo, oh, ow)
        np.testing.assert_allclose(yw, _core.image_resample(y, oh, ow), atol=1e-3)
        np.testing.assert_allclose(mw, _core.image_resample(m, oh, ow), atol=1e-4)
        np.testing.assert_array_equal(q, _core.image_embed_analyse(photo)[0])  # the same mask, whatever the size
        np.testing.assert_allclose(_core.image_luma_work(photo, oh, ow), yw, atol=1e-5)


def test_fused_deterministic_across_threads(photo: np.ndarray) -> None:
    tile = np.random.default_rng(6).normal(size=(32, 32)).astype(np.float32)
    before = pm.get_num_threads()
    outs = []
    try:
        for n in (1, 3):
            pm.set_num_threads(n)
            q, yw, mw = _core.image_embed_analyse(photo, 150, 218)
            outs.append((q, yw, mw, _core.image_embed_fused(photo, q, tile, 2.3, 1.75)))
    finally:
        pm.set_num_threads(before)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pattern_render(y: np.ndarray, simd: str) -> None:
    tile = np.random.default_rng(7).normal(size=(32, 32)).astype(np.float32)
    m = _core.image_mask(y)
    for mask in (None, m):
        d, rms = _core.image_pattern(tile, *y.shape, 2.7, mask)
        ref = pmi._ref_pattern(*y.shape, tile, 2.7) * (1.0 if mask is None else m)
        np.testing.assert_allclose(d, ref, atol=1e-5)
        assert rms == pytest.approx(float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))), rel=1e-5)


def test_lattice_stages_match_references(simd: str) -> None:
    import math

    rng = np.random.default_rng(8)
    p = (rng.random((120, 77)) ** 3).astype(np.float32)
    for sy, sx in ((3.0, 3.0), (2.8, 2.2)):
        np.testing.assert_allclose(
            _core.image_flatten_spectrum(p, sy, sx),
            pmi._ref_flatten_spectrum(p.astype(np.float64), (sy, sx)),
            atol=2e-5,
        )
    tg = np.deg2rad(np.arange(-8.0, 8.01, 0.2))  # includes an angle of 1e-16 (the arange's 0), a wrap edge case
    # the whole array filtered (lattice vectors reach past the array) and a window around lag 0 (they do not)
    for shape, pg in (
        ((180, 260), np.exp(np.arange(math.log(19.2), math.log(110), 0.01))),
        ((180, 260), np.array([150.0, 400.0, 1e4])),
        ((400, 530), np.exp(np.arange(math.log(19.2), math.log(110), 0.01))),
    ):
        a = rng.normal(size=shape).astype(np.float32)
        ref = pmi._ref_lattice_scores(a.astype(np.float64), pg, tg)
        np.testing.assert_allclose(_core.image_lattice_scores(a, pg, tg), ref, atol=2e-5 * np.abs(ref).max())


def test_fused_argument_errors() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    tile = np.zeros((32, 32), np.float32)
    q = np.zeros((64, 64), np.uint16)
    with pytest.raises(ValueError):
        _core.image_embed_analyse(img, 65, 10)
    with pytest.raises(ValueError):
        _core.image_embed_analyse(img, 0, 10)
    with pytest.raises(ValueError):
        _core.image_luma_work(img, 0, 0)
    with pytest.raises(TypeError):
        _core.image_embed_fused(img, q.astype(np.float32), tile, 2.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_embed_fused(img, q[:63], tile, 2.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_embed_fused(img, q, tile[:16], 2.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_embed_fused(img, q, tile, 0.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_pattern(tile, 0, 5, 2.0)
    with pytest.raises(ValueError):
        _core.image_pattern(tile, 8, 8, 2.0, np.ones((8, 9), np.float32))
    with pytest.raises(ValueError):
        _core.image_flatten_spectrum(np.ones((4, 4), np.float32), 0.0, 1.0)
    with pytest.raises(ValueError):
        _core.image_lattice_scores(np.ones((4, 4), np.float32), np.array([-1.0]), np.array([0.0]))
    with pytest.raises(ValueError):
        _core.image_lattice_scores(np.ones((4, 4), np.float32), np.array([2.0]), np.array([np.nan]))


def test_fused_embed_equals_numpy_reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole native embedder against the numpy reference path (luma, mask, pattern, add), 1 LSB."""
    img = np.ascontiguousarray(skimage.data.coffee()[:333, :517])
    key = pm.Key.from_bytes(bytes(range(3, 35)))
    pls = [pm.Payload(0x1234)]
    native = pmi._embed_arrays(img[None], pls, key.secret_bytes(), 1.0, informed=False)
    # informed: the amplitudes from the fused pass's working planes match the reference's
    tabs = pmi._tables(key.secret_bytes(), 64)
    coded = pls[0].encode().astype(np.float64)
    c = pmi._chip_size(333)
    _q, yw, mw = _core.image_embed_analyse(img, 333, 517)
    f_native = pmi._informed_factors_work(yw, mw, 1.0, tabs, coded, c)
    y = pmi._ref_luma(img)
    monkeypatch.setattr(pmi, "_NATIVE", False)
    ref = pmi._embed_arrays(img[None], pls, key.secret_bytes(), 1.0, informed=False)
    f_ref = pmi._informed_factors(y, pmi._ref_mask(y), tabs, coded, c)
    diff = np.abs(native.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert np.corrcoef(f_native, f_ref)[0, 1] > 0.999


def test_lattice_candidates_native_equals_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 FFTs + C++ flattening and scoring pick the reference's lattice (a 60 % crop, rotated 2 deg)."""
    from PIL import Image

    img = skimage.data.astronaut()
    key = pm.Key.from_bytes(bytes(range(9, 41)))
    marked = pm.image.embed(img, 77, key)
    rot = np.asarray(Image.fromarray(marked).rotate(2.0, resample=Image.BICUBIC))[60:460, 70:420]
    y = pmi._ref_luma(np.ascontiguousarray(rot))
    w = pmi._whiten(y, pmi._chip_size(512))[0]
    native = pmi._lattice_candidates(w, 3, 1.0)
    monkeypatch.setattr(pmi, "_NATIVE", False)
    ref = pmi._lattice_candidates(w, 3, 1.0)
    (p0, t0), (p1, t1) = native[0], ref[0]
    assert abs(math.log(p0 / p1)) < 0.005 and abs(t0 - t1) < 1e-3
    # the true lattice (PIL turns counter-clockwise: -2 deg in the fold's convention)
    assert abs(p0 - 32 * pmi._chip_size(512)) < 2.0 and abs(math.degrees(t0) + 2.0) < 0.5
