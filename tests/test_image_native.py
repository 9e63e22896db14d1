"""Parity of the C++ image kernels (csrc/core/image_*.cpp) with their numpy references in provmark.image."""

from __future__ import annotations

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
