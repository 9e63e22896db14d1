"""Image watermarking: embed a 64-bit (default) payload into a picture and find it again.

Method (details and measured figures in docs/image.md): a tiled spread-spectrum pattern in luma.

* The pattern is a tile of ``TILE x TILE`` chips, repeated over the picture; the chip size is tied to the
  short side (``TILES_ACROSS`` tiles across it), so a resized picture keeps the same pattern in relative
  terms. Chips have a bilinear (tent) shape. ``SYNC`` chips carry a fixed keyed +-1 sync pattern, the others
  carry the coded payload (CRC-32C + K=7 rate-1/3 convolutional code), each coded bit on ``reps`` chips,
  spread by keyed signs and placed by a keyed permutation (streams IMAGE_SYNC, IMAGE_PAYLOAD, IMAGE_PERMUTE).
* Strength follows local texture (a clipped mean-absolute-Laplacian mask), and the whole delta is scaled to
  a fixed RMS (``TARGET_RMS`` grey levels at strength 1, PSNR about 43 dB); the same delta goes to R, G, B.
* Informed embedding: before adding the pattern the embedder runs the detector's own linear read-out on the
  host picture and gives each coded bit an amplitude that cancels the host's projection on it (an
  improved-spread-spectrum step), which removes most host interference for every attack that keeps the
  host (compression, resizing, colour, noise, blur, flips, rotation).
* Detection: area-resample to a working size, band-pass whitening with local normalisation, hypotheses for
  the lattice (the nominal one for the picture's size, then peaks of a spectrally flattened
  autocorrelation), folding of all tiles into one tile of bins, FFT cross-correlation with the sync tile
  (finds the cyclic shift and a horizontal flip), soft read-out of the payload chips, Viterbi + CRC.

A payload is reported only when its CRC passes and the p-value clears ``fpr``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._arrays import is_cuda_array as _is_cuda_array
from .detection import Detection
from .keys import Key
from .payload import DEFAULT_BITS, Payload

__all__ = [
    "LumaEmbedder",
    "detect",
    "detect_batch",
    "detect_file",
    "embed",
    "embed_batch",
    "embed_file",
]

# ---- format constants (changing any of them changes the watermark format) -------------------------------
TILE = 32  # chips per tile side
TILES_ACROSS = 6.0  # tiles across the short side at embedding
MIN_CHIP = 2.0  # smallest chip size in pixels (pictures under 384 px on the short side use it)
SYNC_MIN = 300  # at least this many chips of the tile carry the sync pattern
BINS = 4  # folding bins per chip
WORK = 512  # the detector (and the informed embedder) work at most at this short side
TARGET_RMS = 1.75  # RMS of the luma delta at strength 1 (grey levels)
MASK_LO, MASK_HI = 1.0, 4.0  # texture mask clip (grey levels of mean absolute Laplacian)
MASK_Q = 21845.0  # the fused embedder's mask quantisation: q = round((m - 1) * MASK_Q); q == 0 is a flat pixel
FLAT_MOVE_MAX = 2.0  # the flat limit raises the mask excess's gain at most this much (_ref_flat_gains)
INFORMED_F_LO, INFORMED_F_HI = 0.3, 3.0  # per-bit amplitude factors of the informed embedder
MIN_EMBED_SIDE = 64
MIN_DETECT_SIDE = 32
DEFAULT_FPR = 1e-6

# p-value model of the sync statistic (max over cyclic shifts and flips of the normalised correlation):
# p = 1 - (1 - Q(z)) ** (EFFECTIVE_TESTS * hypotheses), Q the Gaussian tail; EFFECTIVE_TESTS calibrated on
# unmarked photos by benchmarks/image_calibrate.py (see docs/image.md).
EFFECTIVE_TESTS = 9000.0
N_CANDIDATES = 8  # lattice hypotheses taken from the autocorrelation
LATTICE_MAX_DEG = 8.0  # lattice angles searched: +-8 degrees
FLATTEN_SIGMA = 3.0  # smoothing of the power spectrum (bins of a twice zero-padded spectrum)
EARLY_Z = 6.0  # a nominal-geometry sync statistic above this is decoded before any search
REFINE_MIN_Z = 5.5  # refine the best hypothesis only when its sync statistic is above the noise (max ~5)
MAX_DECODES = 3  # geometries whose payload is decoded per picture
# each geometry's payload is read twice at most: equal weights (what the informed embedding optimises) and, when
# that fails, reliability-weighted (crops); every Viterbi run counts in the CRC false-accept bound
RELIABILITY_FLOOR = 0.05
CROP_SCAN_STEP = 0.016  # log-period step of the scan for unrotated crops
CROP_SCAN_MAX = 2.1  # it reaches 2.1x the nominal period (crops keeping down to 23 % of the area)
PERIOD_STEP = 0.008  # relative period step around each lattice candidate (the sync statistic halves at ~1 %)
CRC_FALSE_ACCEPT = 2.0**-32


# ---- native kernels with numpy references ------------------------------------------------------------------
_NATIVE = hasattr(_core, "image_fold")


def _ref_luma(img: np.ndarray) -> np.ndarray:
    """[H, W] float32 luma in grey levels of [H, W] / [H, W, C] uint8 or float (0..1). C++: image_luma."""
    scale = 255.0 if img.dtype != np.uint8 else 1.0
    if img.ndim == 2:
        y = img.astype(np.float32)
    else:
        f = img[..., :3].astype(np.float32)
        y = f[..., 0] * np.float32(0.299) + f[..., 1] * np.float32(0.587) + f[..., 2] * np.float32(0.114)
    return (y * np.float32(scale)).astype(np.float32)


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] area-averaging weights (each output pixel averages the input span it covers)."""
    s = n_in / n_out
    m = np.zeros((n_out, n_in), np.float64)
    for o in range(n_out):
        a, b = o * s, (o + 1) * s
        i0, i1 = math.floor(a), min(math.ceil(b), n_in)
        for i in range(i0, i1):
            m[o, i] = min(b, i + 1) - max(a, i)
        m[o] /= s
    return m


def _ref_resample(y: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Area resample (downscale) of [H, W] float32. C++: image_resample."""
    h, w = y.shape
    if (h, w) == (out_h, out_w):
        return y.astype(np.float32, copy=True)
    return (_area_matrix(h, out_h) @ y.astype(np.float64) @ _area_matrix(w, out_w).T).astype(np.float32)


def _box(y: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(y, 2 * r + 1, mode="reflect")


def _ref_mask(y: np.ndarray) -> np.ndarray:
    """Texture mask: box7(|y - box3(y)|) clipped to [MASK_LO, MASK_HI]. C++: image_mask."""
    hp = np.abs(y - _box(y, 1))
    return np.clip(_box(hp, 3), MASK_LO, MASK_HI).astype(np.float32)


def _interp_matrix(n_px: int, c: float, offset: float = 0.0) -> np.ndarray:
    """[n_px, TILE] cyclic bilinear weights of the chip values at pixel centres (chip k centred at k + 0.5)."""
    u = (np.arange(n_px) + 0.5 + offset) / c - 0.5
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    m = np.zeros((n_px, TILE))
    rows = np.arange(n_px)
    np.add.at(m, (rows, i0 % TILE), 1.0 - f)
    np.add.at(m, (rows, (i0 + 1) % TILE), f)
    return m


@functools.lru_cache(maxsize=32)
def _interp_cached(n_px: int, c: float) -> np.ndarray:
    m = _interp_matrix(n_px, c)
    m.flags.writeable = False
    return m


def _ref_pattern(h: int, w: int, tile: np.ndarray, c: float) -> np.ndarray:
    """[h, w] float32 tiled pattern. C++: image_embed_apply computes the same values on the fly."""
    return (_interp_matrix(h, c) @ tile.astype(np.float64) @ _interp_matrix(w, c).T).astype(np.float32)


def _ref_mask_floor(m: np.ndarray) -> np.ndarray:
    """Flat pixels: the texture mask at its floor, i.e. quantised to 0. C++: mask_at_floor (image_math.h)."""
    return ((m.astype(np.float32) - np.float32(MASK_LO)) * np.float32(MASK_Q) + np.float32(0.5)).astype(np.int32) == 0


def _ref_mask_excess(m: np.ndarray) -> np.ndarray:
    """The mask's excess over its floor (float32), 0 on flat pixels. C++: mask_excess (image_math.h)."""
    return np.where(_ref_mask_floor(m), np.float32(0), m.astype(np.float32) - np.float32(MASK_LO))


def _ref_flat_gains(p: np.ndarray, m: np.ndarray, target: float, flat_rms: float) -> tuple[float, float]:
    """Gains (floor, excess) of the flat-limited delta ``p (g_floor + g_excess e)``, ``p`` the tiled pattern and
    ``e`` the mask's excess over its floor (0 on flat pixels): the plain gain g for both unless g puts more than
    ``flat_rms`` grey levels RMS on the flat pixels; then g_floor brings them to ``flat_rms`` and g_excess keeps
    the total RMS at ``target``, within [g, FLAT_MOVE_MAX g]. C++: flat_gains (image_math.h)."""
    flat = _ref_mask_floor(m)
    p64 = p.astype(np.float64)
    pp = p64 * p64
    e = _ref_mask_excess(m).astype(np.float64)
    a, b, c = float(pp.sum()), float((pp * e).sum()), float((pp * e * e).sum())
    f, n = float(pp[flat].sum()), int(np.count_nonzero(flat))
    rms = np.sqrt((a + 2 * b + c) / p.size)
    g = target / rms if rms > 1e-12 else 0.0
    if not (flat_rms > 0 and n > 0 and f > 0 and g > 0) or g * np.sqrt(f / n) <= flat_rms:
        return g, g
    gf = flat_rms * np.sqrt(n / f)
    if c <= 0:
        return gf, g
    disc = gf * gf * b * b - c * (gf * gf * a - target * target * p.size)
    gx = (np.sqrt(max(disc, 0.0)) - gf * b) / c
    return gf, min(FLAT_MOVE_MAX * g, max(g, gx))


def _ref_flat_delta(p: np.ndarray, m: np.ndarray, target: float, flat_rms: float) -> np.ndarray:
    """The flat-limited delta (float32; ``m p`` times the plain gain when the limit does not bind)."""
    gf, gx = _ref_flat_gains(p, m, target, flat_rms)
    if gf == gx:
        return (m * p) * np.float32(gx)
    return p * (np.float32(gf) + np.float32(gx) * _ref_mask_excess(m))


def _ref_apply(img: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Add the luma delta to every colour channel (alpha untouched); round and clip. C++: image_embed_apply."""
    if img.dtype == np.uint8:
        f = img.astype(np.float32)
        if img.ndim == 2:
            return np.clip(np.rint(f + delta), 0, 255).astype(np.uint8)
        out = img.copy()
        out[..., :3] = np.clip(np.rint(f[..., :3] + delta[..., None]), 0, 255).astype(np.uint8)
        return out
    d = (delta / 255.0).astype(img.dtype)
    if img.ndim == 2:
        return np.clip(img + d, 0.0, 1.0).astype(img.dtype)
    out = img.copy()
    out[..., :3] = np.clip(img[..., :3] + d[..., None], 0.0, 1.0)
    return out


def _gauss(y: np.ndarray, s: float) -> np.ndarray:
    from scipy import ndimage

    if s < 0.2:
        return y
    return ndimage.gaussian_filter(y, s, mode="reflect", truncate=3.0)


def _ref_whiten(y: np.ndarray, c: float, den: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass (difference of Gaussians at 0.15 c and 0.5 c) divided by its local mean magnitude.

    Returns (whitened, denominator); pass ``den`` to reuse a denominator (linear read-out). C++: image_whiten.
    """
    y = y.astype(np.float32)
    d = _gauss(y, 0.15 * c) - _gauss(y, 0.5 * c)
    if den is None:
        a = _gauss(np.abs(d), c)
        den = (a + np.float32(0.5) + np.float32(0.1) * np.float32(np.mean(a))).astype(np.float32)
    w = d / den
    return (w - w.mean()).astype(np.float32), den


def _ref_fold(w: np.ndarray, period: float, theta: float) -> np.ndarray:
    """Fold [H, W] into one tile of [TILE*BINS]^2 bins on the lattice (period px, angle rad). C++: image_fold."""
    h, wd = w.shape
    n = TILE * BINS
    scale = n / period
    ys = (np.arange(h, dtype=np.float64) + 0.5)[:, None]
    xs = (np.arange(wd, dtype=np.float64) + 0.5)[None, :]
    ct, st = math.cos(theta) * scale, math.sin(theta) * scale
    iu = np.floor(ct * xs + st * ys).astype(np.int64) % n
    iv = np.floor(-st * xs + ct * ys).astype(np.int64) % n
    idx = (iv * n + iu).ravel()
    s = np.bincount(idx, weights=w.ravel().astype(np.float64), minlength=n * n)
    cnt = np.bincount(idx, minlength=n * n)
    return (s / np.maximum(cnt, 1)).reshape(n, n)


if _NATIVE:  # pragma: no branch
    _luma = _core.image_luma
    _resample = _core.image_resample
    _mask = _core.image_mask
    _whiten_native = _core.image_whiten
    _fold = _core.image_fold

    def _whiten(y: np.ndarray, c: float, den: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return _whiten_native(y, float(c), den)

else:
    _luma, _resample, _mask, _whiten, _fold = _ref_luma, _ref_resample, _ref_mask, _ref_whiten, _ref_fold


# ---- keyed tables ------------------------------------------------------------------------------------------
class _Tables:
    """Chip layout of one (key, payload size): which chips carry sync / which coded bit, and their signs."""

    def __init__(self, secret: bytes, payload_bits: int) -> None:
        n = TILE * TILE
        coded = Payload.coded_length(payload_bits)
        reps = (n - SYNC_MIN) // coded
        if reps < 1:
            raise ValueError(f"image: a {payload_bits}-bit payload does not fit in the {TILE}x{TILE} tile")
        perm = np.asarray(_core.random_permutation(secret, _core.Stream.IMAGE_PERMUTE, n), dtype=np.int64)
        self.coded = coded
        self.pay_idx = perm[: reps * coded].reshape(reps, coded)
        self.sync_idx = perm[reps * coded :]
        self.sync_sign = np.asarray(_core.random_signs(secret, _core.Stream.IMAGE_SYNC, self.sync_idx.size), np.float64)
        self.carrier = np.asarray(
            _core.random_signs(secret, _core.Stream.IMAGE_PAYLOAD, reps * coded), np.float64
        ).reshape(reps, coded)
        sync = np.zeros(n)
        sync[self.sync_idx] = self.sync_sign
        self.sync_tile = sync.reshape(TILE, TILE)
        m = _interp_matrix(TILE * BINS, float(BINS))  # [n_bins, TILE]
        self.bin_interp = m
        template = m @ self.sync_tile @ m.T
        self.sync_fft = np.conj(np.fft.rfft2(template))
        self.sync_fft_flip = np.conj(np.fft.rfft2(template[:, ::-1]))
        self.sync_fft_pair = np.stack([self.sync_fft, self.sync_fft_flip]).astype(np.complex64)

    def tile(self, coded_bits: np.ndarray, factors: np.ndarray | None = None) -> np.ndarray:
        v = np.zeros(TILE * TILE)
        v[self.sync_idx] = self.sync_sign
        amp = 2.0 * coded_bits.astype(np.float64) - 1.0
        if factors is not None:
            amp = amp * factors
        v[self.pay_idx] = self.carrier * amp[None, :]
        return v.reshape(TILE, TILE)

    def soft(self, folded: np.ndarray) -> np.ndarray:
        """Coded-bit soft values from an aligned folded tile (matched filter of the chip shape)."""
        chips = (self.bin_interp.T @ folded @ self.bin_interp).ravel()
        return (chips[self.pay_idx] * self.carrier).sum(axis=0)


@functools.lru_cache(maxsize=16)
def _tables(secret: bytes, payload_bits: int) -> _Tables:
    return _Tables(secret, payload_bits)


def _key_secret(key: Key) -> bytes:
    if not isinstance(key, Key):
        raise TypeError(f"image: key must be a provmark.Key, got {type(key).__name__}")
    return key.secret_bytes()


# ---- geometry helpers --------------------------------------------------------------------------------------
def _chip_size(short_side: int) -> float:
    return max(MIN_CHIP, short_side / (TILE * TILES_ACROSS))


def _work_shape(h: int, w: int) -> tuple[int, int, float]:
    """Working size (short side at most WORK) and the scale factor input px -> working px."""
    short = min(h, w)
    if short <= WORK:
        return h, w, 1.0
    s = WORK / short
    return max(1, round(h * s)), max(1, round(w * s)), s


# ---- input / output adapters -------------------------------------------------------------------------------
class _Adapted:
    """A picture as a numpy array [H, W] or [H, W, C] (uint8, float32 or float64) plus how to give it back."""

    __slots__ = ("array", "restore")

    def __init__(self, array: np.ndarray, restore: Any) -> None:
        self.array = array
        self.restore = restore


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "dim")


def _check_array(a: np.ndarray, func: str, batch: bool = False) -> np.ndarray:
    lead = 1 if batch else 0
    if a.ndim not in (2 + lead, 3 + lead):
        raise ValueError(
            f"{func}: expected an image of shape [H, W] or [H, W, C]{' per item' if batch else ''}, got {a.shape}"
        )
    if a.ndim == 3 + lead and a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{func}: the channel axis (last) must have 1, 3 or 4 entries, got shape {a.shape}")
    if a.dtype == np.uint8:
        pass
    elif a.dtype in (np.float32, np.float64):
        if a.size and not np.all(np.isfinite(a)):
            raise ValueError(f"{func}: the image contains NaN or infinite values")
        if a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise ValueError(f"{func}: float images must be in [0, 1], got values in [{a.min():.4g}, {a.max():.4g}]")
    else:
        raise TypeError(f"{func}: image dtype must be uint8, float32 or float64, got {a.dtype}")
    h, w = a.shape[lead], a.shape[lead + 1]
    if h == 0 or w == 0:
        raise ValueError(f"{func}: the image is empty (shape {a.shape})")
    return a


def _adapt(image: Any, func: str) -> _Adapted:
    """Accept numpy, PIL.Image or a torch CPU tensor [C, H, W]; return an HWC/HW numpy view and a restorer."""
    if isinstance(image, np.ndarray):
        a = _check_array(image, func)
        if a.ndim == 3 and a.shape[2] == 1:
            return _Adapted(np.ascontiguousarray(a[..., 0]), lambda out: out[..., None])
        return _Adapted(np.ascontiguousarray(a), lambda out: out)
    pil = sys.modules.get("PIL.Image")
    if pil is not None and isinstance(image, pil.Image):
        return _adapt_pil(image, func)
    if _is_torch(image):
        return _adapt_torch(image, func, batch=False)
    raise TypeError(
        f"{func}: image must be a numpy array, a PIL.Image.Image or a torch tensor, got {type(image).__name__}"
    )


def _adapt_pil(im: Any, func: str) -> _Adapted:
    pil = sys.modules["PIL.Image"]
    mode = im.mode
    if mode in ("RGB", "RGBA", "L"):
        conv = im
    elif mode in ("LA", "PA") or (mode == "P" and "transparency" in im.info):
        conv = im.convert("RGBA")
    elif mode in ("I;16", "I", "F", "1"):
        conv = im.convert("L")
    else:
        conv = im.convert("RGB")
    a = _check_array(np.asarray(conv), func)

    def restore(out: np.ndarray) -> Any:
        res = pil.fromarray(out)  # HxW -> L, HxWx3 -> RGB, HxWx4 -> RGBA, the modes conv can have
        res.info.update({k: v for k, v in im.info.items() if k in ("icc_profile", "exif", "dpi")})
        return res

    return _Adapted(np.ascontiguousarray(a), restore)


def _torch_to_numpy(t: Any, func: str) -> np.ndarray:
    if getattr(t, "is_cuda", False) or str(getattr(t, "device", "cpu")) != "cpu":
        raise TypeError(f"{func}: only CPU torch tensors are supported (got device {t.device}); call .cpu()")
    t = t.detach()
    try:
        return np.from_dlpack(t)
    except (TypeError, RuntimeError, BufferError):
        return t.numpy()


def _adapt_torch(t: Any, func: str, batch: bool) -> _Adapted:
    a = _torch_to_numpy(t, func)
    want = 4 if batch else 3
    if a.ndim != want:
        raise ValueError(
            f"{func}: torch tensors must be {'[N, C, H, W]' if batch else '[C, H, W]'}, got shape {tuple(a.shape)}"
        )
    if a.shape[-3] not in (1, 3, 4):
        raise ValueError(f"{func}: the channel axis must have 1, 3 or 4 entries, got shape {tuple(a.shape)}")
    hwc = np.moveaxis(a, -3, -1)
    if hwc.shape[-1] == 1:
        hwc = hwc[..., 0]
    hwc = _check_array(np.ascontiguousarray(hwc), func, batch=batch)
    torch = sys.modules["torch"]
    gray = a.shape[-3] == 1

    def restore(out: np.ndarray) -> Any:
        o = out[..., None] if gray else out
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(o, -1, -3)))

    return _Adapted(hwc, restore)


def _channels_ok_for_embed(a: np.ndarray, func: str) -> None:
    h, w = a.shape[:2]
    if min(h, w) < MIN_EMBED_SIDE:
        raise ValueError(f"{func}: the image must be at least {MIN_EMBED_SIDE} px on each side, got {w}x{h}")


def _check_flat_rms(flat_rms: Any, fn: str) -> float | None:
    """None (off) or a finite limit > 0 in grey levels."""
    if flat_rms is None:
        return None
    if isinstance(flat_rms, bool) or not isinstance(flat_rms, (int, float, np.floating, np.integer)):
        raise TypeError(f"{fn}: flat_rms must be a number or None, got {type(flat_rms).__name__}")
    v = float(flat_rms)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{fn}: flat_rms must be a finite number > 0 (grey levels) or None, got {flat_rms!r}")
    return v


def _check_strength(strength: Any, fn: str = "image.embed") -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TypeError(f"{fn}: strength must be a number, got {type(strength).__name__}")
    s = float(strength)
    if not (math.isfinite(s) and 0.0 < s <= 10.0):
        raise ValueError(f"{fn}: strength must be in (0, 10], got {strength!r}")
    return s


# ---- embedding ---------------------------------------------------------------------------------------------
def _informed_factors(y: np.ndarray, m: np.ndarray, tabs: _Tables, coded: np.ndarray, c: float) -> np.ndarray:
    """Per coded bit amplitude factors that cancel the host's projection on each bit (see module doc).

    ``y``, ``m``: full-size luma and texture mask; the step works on them area-resampled to the working size.
    """
    h, w = y.shape
    hw, ww, s = _work_shape(h, w)
    yw = _resample(y, hw, ww)
    mw = _resample(m, hw, ww) if s != 1.0 else m
    return _informed_factors_work(yw, mw, s, tabs, coded, c)


def _informed_factors_work(
    yw: np.ndarray, mw: np.ndarray, s: float, tabs: _Tables, coded: np.ndarray, c: float
) -> np.ndarray:
    """:func:`_informed_factors` from the luma and mask already at the working size (scale ``s``)."""
    hw, ww = yw.shape
    cw = c * s
    period = TILE * cw
    sign = 2.0 * coded - 1.0
    wh, den = _whiten(yw, cw)
    h_soft = tabs.soft(_fold(wh, period, 0.0)) * sign
    # the unit pattern, made at the working size (chips span several input pixels, so this matches the
    # area-resampled full-size pattern closely), with the host's normaliser: the detector's linear response
    if _NATIVE:
        d, rms = _core.image_pattern(tabs.tile(coded).astype(np.float32), hw, ww, float(cw), mw)
    else:
        pw = (_interp_cached(hw, cw) @ tabs.tile(coded) @ _interp_cached(ww, cw).T).astype(np.float32)
        d = mw * pw
        rms = float(np.sqrt(np.mean(d * d)))
    d *= np.float32(TARGET_RMS / max(rms, 1e-9))
    wd, _ = _whiten(d, cw, den)
    r_soft = tabs.soft(_fold(wd, period, 0.0)) * sign
    r_med = float(np.median(r_soft))
    if not r_med > 0:
        return np.ones(coded.size)
    r = np.maximum(r_soft, 0.2 * r_med)
    n_sync = tabs.sync_idx.size
    n_rep = tabs.pay_idx.shape[0]
    mults = np.linspace(0.2, 4.0, 39)[:, None] * r_med
    f = np.clip((mults - h_soft[None, :]) / r[None, :], INFORMED_F_LO, INFORMED_F_HI)  # [39, coded]
    energy = (n_sync + n_rep * np.sum(f * f, axis=1)) / (n_sync + n_rep * coded.size)
    worst = np.percentile(h_soft[None, :] + f * r[None, :] / np.sqrt(energy)[:, None], 2, axis=1)
    return f[int(np.argmax(worst))]


def _embed_array(a: np.ndarray, pl: Payload, secret: bytes, strength: float, informed: bool = True) -> np.ndarray:
    if _NATIVE:
        return _embed_fused(np.ascontiguousarray(a), pl, secret, strength, informed)
    return _embed_arrays(a[None], [pl], secret, strength, informed)[0]


def _embed_fused(a: np.ndarray, pl: Payload, secret: bytes, strength: float, informed: bool = True) -> np.ndarray:
    """One picture through the fused native embedder: two full-resolution passes, no full-size float plane.

    Pass A (``image_embed_analyse``) gives the texture mask (uint16) and the luma and mask at the working
    size; the informed step runs there; pass B (``image_embed_fused``) adds the scaled pattern.
    """
    h, w = a.shape[:2]
    c = _chip_size(min(h, w))
    tabs = _tables(secret, pl.bits)
    coded = pl.encode().astype(np.float64)
    if informed:
        hw, ww, s = _work_shape(h, w)
        q, yw, mw = _core.image_embed_analyse(a, hw, ww)
        factors = _informed_factors_work(yw, mw, s, tabs, coded, c)
    else:
        q = _core.image_embed_analyse(a)[0]
        factors = None
    tile = tabs.tile(coded, factors).astype(np.float32)
    return _core.image_embed_fused(a, q, tile, float(c), float(TARGET_RMS * strength))


def _embed_arrays(
    stack: np.ndarray, pls: Sequence[Payload], secret: bytes, strength: float, informed: bool = True
) -> np.ndarray:
    """Embed into a C-contiguous stack [N, H, W(, C)] of same-size pictures.

    Native: each picture through the fused embedder (:func:`_embed_fused`). numpy reference: luma, mask,
    informed step, pattern and add, stage by stage.
    """
    n, h, w = stack.shape[:3]
    if _NATIVE:
        out = np.empty_like(stack)
        for i, pl in enumerate(pls):
            out[i] = _embed_fused(stack[i], pl, secret, strength, informed)
        return out
    c = _chip_size(min(h, w))
    y = np.stack([_ref_luma(a) for a in stack])
    m = np.stack([_ref_mask(yi) for yi in y])
    tiles = np.empty((n, TILE, TILE), np.float32)
    for i, pl in enumerate(pls):
        tabs = _tables(secret, pl.bits)
        coded = pl.encode().astype(np.float64)
        factors = _informed_factors(y[i], m[i], tabs, coded, c) if informed else None
        tiles[i] = tabs.tile(coded, factors)
    target = float(TARGET_RMS * strength)
    out = np.empty_like(stack)
    for i in range(n):
        d = m[i] * _ref_pattern(h, w, tiles[i], c)
        d *= np.float32(target / max(float(np.sqrt(np.mean(d.astype(np.float64) ** 2))), 1e-9))
        out[i] = _ref_apply(stack[i], d)
    return out


class LumaEmbedder:
    """A prepared embedder for many luma planes of one size (video frames): ``mark(y)`` marks one plane.

    Everything that depends only on the size, the key and the payload is computed once: the keyed tables,
    the coded bits, the chip size and the tile. A frame then costs the two passes of the fused native
    embedder (``image_embed_analyse``: luma and texture mask; ``image_embed_fused``: pattern and add).

    ``informed`` sets the informed-embedding step (see the module doc), which costs about as much as the
    rest of :func:`embed` together:

    * ``"off"`` (default): no informed step (every coded bit at amplitude 1); the result equals what
      :func:`embed` gives without the step. The video path uses this (measured in docs/video.md).
    * ``"first"``: the per-bit amplitudes are computed on the first plane marked and reused for every later
      plane; the first plane comes out exactly as :func:`embed` marks it. Only for pictures that do not
      move: moving clips marked this way decoded far less often than with ``"off"`` (a shift of one chip
      probably makes the amplitudes misfit the host).

    ``flat_rms`` (grey levels, default None: off) limits the mark's RMS on flat pixels (texture mask at its
    floor: sky, walls, dark backgrounds), where a static grain would otherwise show on mostly flat frames. The
    mark, mask times pattern, is split into the mask's floor part (all that flat pixels carry), scaled down to
    the limit, and its excess over the floor, scaled up (at most ``FLAT_MOVE_MAX`` times) to keep the plane's
    RMS: the energy goes to the textured pixels in proportion to their texture, and pixels just above the floor
    stay near the flat pixels' amplitude. The video profile uses it
    (``provmark.video.FLAT_RMS``; measured in docs/video.md, "Imperceptibility"). The detector is the same.

    ``y`` is an ``[H, W]`` plane: uint8 grey levels, uint16 samples with ``bit_depth`` (9..16) bits, or float
    32/64 in [0, 1]; an ``[H, W, 3|4]`` RGB(A) uint8/float picture gets the same delta on R, G and B, as in
    :func:`embed`. The result is a new array of the same shape and dtype. Thread-safe: the amplitudes are set once,
    under a lock.
    """

    def __init__(
        self,
        width: int,
        height: int,
        payload: Payload | bytes | int,
        key: Key,
        strength: float = 1.0,
        *,
        informed: str = "off",
        flat_rms: float | None = None,
    ) -> None:
        import threading

        for name, v in (("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"image.LumaEmbedder: {name} must be a positive int, got {v!r}")
        if min(width, height) < MIN_EMBED_SIDE:
            raise ValueError(
                f"image.LumaEmbedder: planes must be at least {MIN_EMBED_SIDE} px on each side, got {width}x{height}"
            )
        if informed not in ("first", "off"):
            raise ValueError(f"image.LumaEmbedder: informed must be 'first' or 'off', got {informed!r}")
        self.width, self.height = int(width), int(height)
        secret = _key_secret(key)
        self.payload = Payload.coerce(payload) if not isinstance(payload, Payload) else payload
        self.strength = _check_strength(strength)
        self.informed = informed
        self.flat_rms = _check_flat_rms(flat_rms, "image.LumaEmbedder")
        self._tabs = _tables(secret, self.payload.bits)
        self._coded = self.payload.encode().astype(np.float64)
        self.chip = _chip_size(min(self.height, self.width))
        self._target = float(TARGET_RMS * self.strength)
        self.factors: np.ndarray | None = None  # per coded bit amplitudes once set (informed="first")
        self._tile: np.ndarray | None = None
        if informed == "off":
            self._tile = self._tabs.tile(self._coded).astype(np.float32)
        self._lock = threading.Lock()

    def _check(self, y: Any, bit_depth: int) -> np.ndarray:
        if not isinstance(y, np.ndarray):
            raise TypeError(f"image.LumaEmbedder.mark: expected a numpy array, got {type(y).__name__}")
        if y.shape[:2] != (self.height, self.width) or y.ndim not in (2, 3):
            raise ValueError(
                f"image.LumaEmbedder.mark: expected shape ({self.height}, {self.width}) or ({self.height}, "
                f"{self.width}, C), got {y.shape}"
            )
        if y.ndim == 3:
            if bit_depth != 8:
                raise ValueError(f"image.LumaEmbedder.mark: bit_depth applies to uint16 planes only, got {bit_depth!r}")
            if y.dtype == np.uint16:
                raise TypeError("image.LumaEmbedder.mark: uint16 is supported for [H, W] planes only")
            return _check_array(y, "image.LumaEmbedder.mark")
        if y.dtype == np.uint8:
            if bit_depth != 8:
                raise ValueError(f"image.LumaEmbedder.mark: uint8 planes have bit_depth 8, got {bit_depth!r}")
        elif y.dtype == np.uint16:
            if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or not 9 <= bit_depth <= 16:
                raise ValueError(f"image.LumaEmbedder.mark: uint16 planes need bit_depth in 9..16, got {bit_depth!r}")
        elif y.dtype in (np.float32, np.float64):
            _check_array(y, "image.LumaEmbedder.mark")
        else:
            raise TypeError(f"image.LumaEmbedder.mark: plane dtype must be uint8, uint16 or float, got {y.dtype}")
        return y

    def _tile_for(self, factors_of: Any) -> np.ndarray:
        """The tile; with informed="first", ``factors_of()`` gives the amplitudes on the first call."""
        if self._tile is None:
            with self._lock:
                if self._tile is None:
                    f = factors_of()
                    self.factors = f
                    self._tile = self._tabs.tile(self._coded, f).astype(np.float32)
        return self._tile

    def mark(self, y: np.ndarray, *, bit_depth: int = 8) -> np.ndarray:
        """Return the marked plane (a new array, same shape and dtype)."""
        y = self._check(y, bit_depth)
        if y.dtype == np.uint16:
            vmax = np.float32((1 << bit_depth) - 1)
            if y.size and int(y.max()) > int(vmax):
                raise ValueError(f"image.LumaEmbedder.mark: samples exceed {bit_depth} bits")
            out = self._apply((y.astype(np.float32) / vmax).clip(0.0, 1.0))
            return np.clip(np.rint(out * vmax), 0, vmax).astype(np.uint16)
        return self._apply(np.ascontiguousarray(y))

    def _apply(self, a: np.ndarray) -> np.ndarray:
        if _NATIVE:
            if self._tile is None:
                hw, ww, s = _work_shape(self.height, self.width)
                q, yw, mw = _core.image_embed_analyse(a, hw, ww)
                tile = self._tile_for(lambda: _informed_factors_work(yw, mw, s, self._tabs, self._coded, self.chip))
            else:
                q = _core.image_embed_analyse(a)[0]
                tile = self._tile
            return _core.image_embed_fused(a, q, tile, float(self.chip), self._target, self.flat_rms or 0.0)
        yl = _ref_luma(a)
        m = _ref_mask(yl)
        tile = self._tile_for(lambda: _informed_factors(yl, m, self._tabs, self._coded, self.chip))
        p = _ref_pattern(self.height, self.width, tile, self.chip)
        if self.flat_rms:
            return _ref_apply(a, _ref_flat_delta(p, m, self._target, self.flat_rms))
        d = m * p
        d *= np.float32(self._target / max(float(np.sqrt(np.mean(d.astype(np.float64) ** 2))), 1e-9))
        return _ref_apply(a, d)


def _host_value_range(value_range: Any, fn: str) -> None:
    """Host pictures are floats in [0, 1] (or uint8); ``value_range=(-1, 1)`` is for CUDA arrays (provmark.gpu)."""
    try:
        ok = tuple(float(v) for v in value_range) == (0.0, 1.0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"{fn}: value_range={value_range!r} is supported for CUDA arrays only (provmark.gpu); host pictures "
            "take value_range=(0, 1): scale them to [0, 1] first"
        )


def embed(
    image: Any,
    payload: Payload | bytes | int,
    key: Key,
    strength: float = 1.0,
    *,
    value_range: tuple[float, float] = (0, 1),
) -> Any:
    """Watermark ``image`` with ``payload`` under ``key``; returns the same type, shape and dtype.

    ``image``: numpy uint8 [H, W, 3] (RGB), [H, W, 4] (RGBA, alpha untouched), [H, W] (grey), or float32/64 in
    [0, 1]; a PIL.Image.Image; or a torch CPU tensor [C, H, W] (float in [0, 1] or uint8; [N, C, H, W] goes to
    :func:`embed_batch`). CUDA arrays (torch CUDA tensors, CuPy) are marked on their device by
    :func:`provmark.gpu.image_embed` and come back on it. ``payload``: bytes (8 by default), int or
    :class:`Payload`. ``strength`` scales the pattern amplitude (1.0: PSNR about 43 dB). ``value_range=(-1,
    1)``: float CUDA arrays with samples in [-1, 1] (output in [-1, 1]); host pictures take (0, 1) only.
    """
    if _is_cuda_array(image):
        from . import gpu

        return gpu.image_embed(image, payload, key, strength, value_range=value_range)
    _host_value_range(value_range, "image.embed")
    if _is_torch(image) and image.dim() == 4:
        return embed_batch(image, payload, key, strength)
    secret = _key_secret(key)
    pl = Payload.coerce(payload) if not isinstance(payload, Payload) else payload
    s = _check_strength(strength)
    ad = _adapt(image, "image.embed")
    _channels_ok_for_embed(ad.array, "image.embed")
    return ad.restore(_embed_array(ad.array, pl, secret, s))


def _batch_arrays(images: Any, func: str) -> tuple[list[np.ndarray], Any]:
    if _is_torch(images):
        ad = _adapt_torch(images, func, batch=True)
        return list(ad.array), lambda outs: ad.restore(np.stack(outs))
    if isinstance(images, np.ndarray):
        a = _check_array(images, func, batch=True)
        return list(a), lambda outs: np.stack(outs)
    if isinstance(images, (list, tuple)):
        ads = [_adapt(im, func) for im in images]
        return [x.array for x in ads], lambda outs: [x.restore(o) for x, o in zip(ads, outs, strict=False)]
    raise TypeError(f"{func}: images must be a list, an [N, H, W(, C)] array or an [N, C, H, W] tensor")


def embed_batch(
    images: Any, payloads: Any, key: Key, strength: float = 1.0, *, value_range: tuple[float, float] = (0, 1)
) -> Any:
    """Embed into N same-size images: a list, an [N, H, W(, C)] array or an [N, C, H, W] torch tensor.

    ``payloads`` is one payload for all, or a sequence of N. Returns the same container type.
    """
    if _is_cuda_array(images):
        from . import gpu

        return gpu.image_embed_batch(images, payloads, key, strength, value_range=value_range)
    _host_value_range(value_range, "image.embed_batch")
    secret = _key_secret(key)
    s = _check_strength(strength)
    arrays, restore = _batch_arrays(images, "image.embed_batch")
    if not arrays:
        raise ValueError("image.embed_batch: no images given")
    shape = arrays[0].shape
    for a in arrays:
        if a.shape != shape or a.dtype != arrays[0].dtype:
            raise ValueError("image.embed_batch: all images must have the same shape and dtype")
        _channels_ok_for_embed(a, "image.embed_batch")
    if isinstance(payloads, (list, tuple)):
        if len(payloads) != len(arrays):
            raise ValueError(f"image.embed_batch: {len(payloads)} payloads for {len(arrays)} images")
        pls = [Payload.coerce(p) for p in payloads]
    else:
        pls = [Payload.coerce(payloads)] * len(arrays)
    out = _embed_arrays(np.ascontiguousarray(np.stack(arrays)), pls, secret, s)
    return restore(list(out))


# ---- detection ---------------------------------------------------------------------------------------------
def _q(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _p_sync(z: float, hypotheses: int) -> float:
    """P(max statistic >= z) on an unmarked picture after `hypotheses` geometry hypotheses."""
    q = _q(z)
    n = EFFECTIVE_TESTS * max(1, hypotheses)
    if q * n < 1e-6:
        return q * n
    return float(-math.expm1(n * math.log1p(-min(q, 1.0 - 1e-16))))


def _ref_flatten_spectrum(p: np.ndarray, sigma: tuple[float, float]) -> np.ndarray:
    """Spectral flattening: the power spectrum over its local (Gaussian, periodic; sigma in bins per axis)
    average, minus 1, clipped to [-1, 8]. C++: image_flatten_spectrum."""
    from scipy import ndimage

    ps = ndimage.gaussian_filter(p, sigma, mode="wrap")
    return np.clip(p / (ps + 1e-20) - 1.0, -1.0, 8.0)


def _ref_lattice_scores(a: np.ndarray, pgrid: np.ndarray, tgrid: np.ndarray) -> np.ndarray:
    """[len(pgrid), len(tgrid)] lattice scores on the autocorrelation ``a`` (minus its 7x7 local mean): the four
    nearest lattice points minus the half-period points (which removes the 2x harmonic). Only their ranking is
    used. C++: image_lattice_scores."""
    from scipy import ndimage

    fh, fw = a.shape
    a = a - ndimage.uniform_filter(a, 7, mode="wrap")
    P, TH = np.meshgrid(pgrid, tgrid, indexing="ij")
    score = np.zeros_like(P)
    half = np.zeros_like(P)
    cos, sin = np.cos(TH), np.sin(TH)
    for i, j in ((1, 0), (0, 1), (1, 1), (1, -1)):
        for s, acc in ((1.0, score), (0.5, half)):
            dx = s * P * (i * cos - j * sin)
            dy = s * P * (i * sin + j * cos)
            acc += ndimage.map_coordinates(a, [dy % fh, dx % fw], order=1, mode="grid-wrap")
    return score - np.maximum(half, 0.0)


def _lattice_plan(
    h: int, wd: int, src_scale: float
) -> tuple[int, int, tuple[float, float], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The lattice search's sizes for an [h, wd] whitened picture (see :func:`_lattice_candidates`): FFT sizes
    (fh, fw), the flattening's sigma (bins along rows, columns), the notched rows [fh] and columns [fw // 2 + 1]
    of the half spectrum (bool; the 8x8 block grid of a JPEG source), and the period and angle grids; None when
    the picture is too small for a lattice."""
    from scipy import fft as sfft

    pmin, pmax = TILE * 0.6, min(h, wd) * 0.72
    if pmax <= pmin:
        return None
    a_max = math.radians(LATTICE_MAX_DEG)
    lag = math.ceil(pmax * (math.cos(a_max) + math.sin(a_max))) + 5
    fh, fw = sfft.next_fast_len(h + lag, real=True), sfft.next_fast_len(wd + lag, real=True)
    sigma = (FLATTEN_SIGMA * fh / (2 * h), FLATTEN_SIGMA * fw / (2 * wd))
    # notch the 8x8 block grid of a JPEG source (period 8 input px = 8 * src_scale working px)
    rows, cols = np.zeros(fh, bool), np.zeros(fw // 2 + 1, bool)
    per = 8.0 * src_scale
    if per >= 2.0:
        for k in range(1, 64):
            fy = k * fh / per
            if fy > fh / 2:
                break
            for cc in (fy, fh - fy):
                i = round(cc)
                rows[max(i - 1, 0) : i + 2] = True
        for k in range(1, 64):
            fx = k * fw / per
            if fx > fw / 2:
                break
            i = round(fx)
            cols[max(i - 1, 0) : i + 2] = True
    pgrid = np.exp(np.arange(math.log(pmin), math.log(pmax), 0.004))
    # rounded so that the unrotated lattice is exactly 0 (image_fold's fast separable path needs theta == 0)
    tgrid = np.deg2rad(np.round(np.arange(-LATTICE_MAX_DEG, LATTICE_MAX_DEG + 0.01, 0.2), 6))
    return fh, fw, sigma, rows, cols, pgrid, tgrid


def _lattice_pick(sc: np.ndarray, pgrid: np.ndarray, tgrid: np.ndarray, n_out: int) -> list[tuple[float, float]]:
    """The n_out best (period, angle) of the lattice scores ``sc`` [len(pgrid), len(tgrid)], each suppressing its
    neighbourhood (modifies ``sc``)."""
    out = []
    for _ in range(n_out):
        i, j = np.unravel_index(int(np.argmax(sc)), sc.shape)
        if not np.isfinite(sc[i, j]):
            break
        out.append((float(pgrid[i]), float(tgrid[j])))
        # suppress the neighbourhood (4 % in period, 1.5 degrees in angle): a rectangle of the separable grid
        rows = np.abs(np.log(pgrid / pgrid[i])) < 0.04
        cols = np.abs(tgrid - tgrid[j]) < np.deg2rad(1.5)
        sc[np.ix_(rows, cols)] = -np.inf
    return out


def _lattice_candidates(w: np.ndarray, n_out: int, src_scale: float) -> list[tuple[float, float]]:
    """Lattice (period, angle) hypotheses from peaks of the spectrally flattened autocorrelation of `w`.

    The FFTs are zero-padded to fast sizes of at least the picture plus the longest lag read (the lattice
    vectors of the largest period, plus the scoring's 7x7 box and bilinear reads), which keeps those lags free
    of wrap-around; the spectrum's smoothing is ``FLATTEN_SIGMA`` bins of a twice-padded spectrum (rescaled
    per axis to the padding used). Native: scipy's float32 FFTs and the C++ flattening and scoring; else numpy
    float64 and the references. (provmark.gpu runs the same on the device: ``cuda_image_lattice_scores``.)
    """
    plan = _lattice_plan(*w.shape, src_scale)
    if plan is None:
        return []
    return _lattice_pick(_lattice_scores(w, *plan), plan[5], plan[6], n_out)


def _lattice_scores(
    w: np.ndarray,
    fh: int,
    fw: int,
    sigma: tuple[float, float],
    notch_rows: np.ndarray,
    notch_cols: np.ndarray,
    pgrid: np.ndarray,
    tgrid: np.ndarray,
) -> np.ndarray:
    """The lattice scores [len(pgrid), len(tgrid)] that _lattice_candidates ranks, for the plan of
    _lattice_plan (notch rows / columns: indices or boolean masks). Native: scipy's float32 FFTs and the C++
    flattening and scoring; else numpy float64 and the references. The host reference of
    ``cuda_image_lattice_scores``."""
    from scipy import fft as sfft

    if _NATIVE:
        workers = max(1, int(_core.num_threads()))
        spec = sfft.rfft2(w.astype(np.float32, copy=False), s=(fh, fw), workers=workers)
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        r = _core.image_flatten_spectrum(power.astype(np.float32, copy=False), *sigma)
    else:
        spec = np.fft.rfft2(w, s=(fh, fw))
        r = _ref_flatten_spectrum(spec.real**2 + spec.imag**2, sigma)
    r[notch_rows, :] = 0.0
    r[:, notch_cols] = 0.0
    r[0, 0] = 0.0
    if _NATIVE:
        a = sfft.irfft2(r, s=(fh, fw), workers=workers).astype(np.float32, copy=False)
        return _core.image_lattice_scores(a, pgrid, tgrid)
    return _ref_lattice_scores(np.fft.irfft2(r, s=(fh, fw)), pgrid, tgrid)


class _HostPlanes:
    """Whitening and folds of the host (CPU) engine for :class:`_Search`: the default provider.

    A provider gives the search its whitened planes and folds (``provmark.gpu`` has a device one that keeps the
    planes on the GPU and folds batches of hypotheses in one launch): ``whiten(c)`` -> a handle of the
    whitening at chip size ``c``; ``host(handle)`` -> that whitened plane as a host float32 array (the lattice
    search's FFTs read it); ``reliability(handle)`` -> a handle of the reliability-weighted plane;
    ``fold(handles, periods, thetas)`` -> one folded float64 tile per hypothesis. ``batched`` says whether
    folding hypotheses ahead of their use (:meth:`_Search.prefetch`) pays.
    """

    batched = False

    def __init__(self, y: np.ndarray) -> None:
        self.y = y

    def whiten(self, c: float) -> tuple[np.ndarray, np.ndarray]:
        return _whiten(self.y, c)

    def host(self, handle: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return handle[0]

    def reliability(self, handle: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, None]:
        """See :meth:`_Search.reliability_weighted` (a handle: the weighted plane, no denominator)."""
        w, den = handle
        # den = a + 0.5 + 0.1 * mean(a) (image_whiten) -> recover a
        mean_a = max((float(np.mean(den)) - 0.5) / 1.1, 0.0)
        a = np.maximum(den - np.float32(0.5 + 0.1 * mean_a), np.float32(0.0))
        q = np.square(a / den)
        q += np.float32(RELIABILITY_FLOOR * float(np.mean(q)) + 1e-12)
        return (w / q).astype(np.float32, copy=False), None

    def fold(self, planes: Sequence[Any], periods: Sequence[float], thetas: Sequence[float]) -> list[np.ndarray]:
        return [_fold(p[0], period, theta) for p, period, theta in zip(planes, periods, thetas, strict=True)]


def _chip_key(c: float) -> int:
    """Whitenings are cached on a grid of 6 chip sizes per octave."""
    return round(math.log2(max(c, 0.25)) * 6)


class _Search:
    """Evaluates geometry hypotheses on one whitened working picture.

    The whitening and the folds come from ``provider`` (default: the host engine on ``y``, see
    :class:`_HostPlanes`); the sync correlations run here, on the host, one hypothesis at a time, unless a folded
    tile brings its own (a ``sync`` attribute: (z, shift, flipped), from provmark.gpu's device provider).
    """

    def __init__(self, y: np.ndarray | None, tabs: _Tables, provider: Any = None) -> None:
        self.y = y
        self.tabs = tabs
        self.provider = provider if provider is not None else _HostPlanes(y)  # type: ignore[arg-type]
        self.cache: dict[int, Any] = {}
        self.weighted_cache: dict[int, Any] = {}
        self.ahead: dict[tuple[float, float, int, bool], np.ndarray] = {}  # tiles folded ahead of use
        self.count = 0

    def _whiten_pair(self, c: float) -> Any:
        k = _chip_key(c)
        if k not in self.cache:
            self.cache[k] = self.provider.whiten(2.0 ** (k / 6))
        return self.cache[k]

    def whitened(self, c: float) -> np.ndarray:
        return self.provider.host(self._whiten_pair(c))

    def lattice_candidates(self, c: float, n_out: int, src_scale: float) -> list[tuple[float, float]]:
        """:func:`_lattice_candidates` of the whitening at chip size ``c``, or the provider's own (provmark.gpu's
        device provider scores the lattice on the device and returns the same picks)."""
        own = getattr(self.provider, "lattice_candidates", None)
        if own is not None:
            return own(self._whiten_pair(c), n_out, src_scale)
        return _lattice_candidates(self.whitened(c), n_out, src_scale)

    def _weighted(self, c: float) -> Any:
        k = _chip_key(c)
        if k not in self.weighted_cache:
            self.weighted_cache[k] = self.provider.reliability(self._whiten_pair(c))
        return self.weighted_cache[k]

    def reliability_weighted(self, c: float) -> np.ndarray:
        """The whitened picture times a per-pixel reliability weight (1 / local residual power).

        The whitening divides the band-pass ``d`` by ``den = a + floor`` with ``a`` the local mean magnitude of
        ``d``, so the whitened residual's local power is about ``q = (a / den)^2``: near 1 on texture, small on
        flat areas. Where the host is not cancelled (crops), the per-pixel noise is non-stationary, and the
        optimal linear combiner weights each pixel by signal / noise power, i.e. ``w / q`` (floored at 5 % of
        the mean of ``q``; measured: ``benchmarks/image_decode_diag.py``). Costs a few elementwise passes.
        """
        return self.provider.host(self._weighted(c))

    def prefetch(self, hyps: Sequence[tuple[float, float, float | None]], weighted: bool = False) -> None:
        """Fold hypotheses (period, theta, chip or None for period / TILE) ahead of their evaluation, as one
        batch, when the provider batches (the device); a no-op for the host engine. Tiles folded ahead and never
        evaluated do not count as hypotheses."""
        if not self.provider.batched:
            return
        keys, planes, periods, thetas = [], [], [], []
        for period, theta, chip in hyps:
            c = period / TILE if chip is None else chip
            key = (period, theta, _chip_key(c), weighted)
            if key in self.ahead or key in keys:
                continue
            keys.append(key)
            planes.append(self._weighted(c) if weighted else self._whiten_pair(c))
            periods.append(period)
            thetas.append(theta)
        if keys:
            for key, f in zip(keys, self.provider.fold(planes, periods, thetas), strict=True):
                self.ahead[key] = f

    def fold(self, period: float, theta: float, chip: float | None = None, weighted: bool = False) -> np.ndarray:
        """The folded tile of one hypothesis (on the reliability-weighted plane when ``weighted``)."""
        c = period / TILE if chip is None else chip
        f = self.ahead.pop((period, theta, _chip_key(c), weighted), None)
        if f is None:
            plane = self._weighted(c) if weighted else self._whiten_pair(c)
            f = self.provider.fold([plane], [period], [theta])[0]
        return f

    def evaluate(
        self, period: float, theta: float, chip: float | None = None
    ) -> tuple[float, tuple[float, float], bool, np.ndarray]:
        """(z, (shift_v, shift_u) in bins, flipped, folded tile) of the best cyclic shift and flip.

        (A parabolic sub-bin refinement of the peak was measured and did not help: the peak sits on the
        right bin, and the parabola only adds noise.)
        """
        from scipy import fft as sfft

        self.count += 1
        f = self.fold(period, theta, chip)
        sync = getattr(f, "sync", None)  # a provider that correlates on its side (provmark.gpu's device tiles)
        if sync is not None:
            return (*sync, f)
        n = TILE * BINS
        # both correlations (plain and mirrored template) in one float32 inverse FFT
        ff = sfft.rfft2(f.astype(np.float32))
        cc = sfft.irfft2(ff[None] * self.tabs.sync_fft_pair, s=(n, n), axes=(-2, -1))
        best = None
        for flip, c in ((False, cc[0]), (True, cc[1])):
            sd = c.std()
            if not sd > 0:
                continue
            k = int(np.argmax(c))
            z = float((c.flat[k] - c.mean()) / sd)
            if best is None or z > best[0]:
                shift = (float(k // n), float(k % n))
                best = (z, shift, flip, f)
        if best is None:
            return (0.0, (0.0, 0.0), False, f)
        return best


def _align(folded: np.ndarray, shift: tuple[float, float], flip: bool) -> np.ndarray:
    """Undo the cyclic shift (whole bins) and the mirror of a folded tile."""
    f = np.roll(folded, (-round(shift[0]), -round(shift[1])), axis=(0, 1))
    return f[:, ::-1] if flip else f


def _detect_array(a: np.ndarray, secret: bytes, payload_bits: int, fpr: float, full_search: bool) -> Detection:
    t0 = time.perf_counter()
    _tables(secret, payload_bits)
    h, w = a.shape[:2]
    if min(h, w) < MIN_DETECT_SIDE:
        raise ValueError(f"image.detect: the image must be at least {MIN_DETECT_SIDE} px on each side, got {w}x{h}")
    hw, ww, _s = _work_shape(h, w)
    y = _core.image_luma_work(a, hw, ww) if _NATIVE else _resample(_luma(a), hw, ww)
    return _detect_work(_HostPlanes(y), h, w, secret, payload_bits, fpr, full_search, t0)


def _detect_work(
    planes: Any,
    h: int,
    w: int,
    secret: bytes,
    payload_bits: int,
    fpr: float,
    full_search: bool,
    t0: float | None = None,
) -> Detection:
    """Detection on a working-size luma plane (of a picture of h x w px) whose whitening and folds come from
    ``planes`` (:class:`_HostPlanes`, or provmark.gpu's device provider). ``t0``: when the call started."""
    if t0 is None:
        t0 = time.perf_counter()
    tabs = _tables(secret, payload_bits)
    _hw, _ww, s = _work_shape(h, w)
    t1 = time.perf_counter()
    search = _Search(getattr(planes, "y", None), tabs, planes)
    timings: dict[str, float] = {"prepare": t1 - t0}
    # (z, period, theta, shift, flipped, folded tile, chip size of the whitening folded)
    results: list[tuple[float, float, float, tuple[float, float], bool, np.ndarray, float]] = []

    def run(period: float, theta: float, chip: float | None = None) -> None:
        z, shift, flip, f = search.evaluate(period, theta, chip)
        results.append((z, period, theta, shift, flip, f, period / TILE if chip is None else chip))

    def refine(period: float, theta: float) -> None:
        # hill-climb on the sync statistic: a coarse 5x5 step until the centre wins, then a fine 3x3 step
        for steps_p, steps_t, rounds in (
            ((-0.004, -0.002, 0.0, 0.002, 0.004), (-0.15, -0.075, 0.0, 0.075, 0.15), 3),
            ((-0.001, 0.0, 0.001), (-0.03, 0.0, 0.03), 2),
        ):
            for _ in range(rounds):
                centre = max(results, key=lambda r: r[0])
                period, theta = centre[1], centre[2]
                ring = [(period * (1 + dp), theta + math.radians(dt)) for dp in steps_p for dt in steps_t if dp or dt]
                search.prefetch([(p, t, None) for p, t in ring])
                for p, t in ring:
                    run(p, t)
                if max(results, key=lambda r: r[0]) is centre:
                    break

    decodes: list[tuple[Payload | None, float, tuple]] = []
    grid: int | None = None  # results before the hill climb

    def tried_near(r: tuple) -> bool:
        """A geometry within 1 % of period and 0.01 rad of one already decoded."""
        return any(abs(math.log(r[1] / d[2][1])) < 0.01 and abs(r[2] - d[2][2]) < 0.01 for d in decodes)

    # [Viterbi runs, CRC checks]: each check (a list decoder makes several) is a 2^-32 chance for a picture
    # without the mark to pass the CRC
    viterbi = [0, 0]

    def decode_soft(soft: np.ndarray) -> Payload | None:
        sd = float(np.std(soft))
        viterbi[0] += 1
        pl, checks = Payload.decode_list((soft / sd if sd > 0 else soft).astype(np.float32), payload_bits)
        viterbi[1] += checks
        return pl

    def try_decode(r: tuple) -> Payload | None:
        z, period, theta, shift, flip, f, chip = r
        pl = decode_soft(tabs.soft(_align(f, shift, flip)))
        if pl is None:
            # the same geometry, each pixel weighted by its reliability (see _Search.reliability_weighted)
            fw = search.fold(period, theta, chip, weighted=True)
            pl = decode_soft(tabs.soft(_align(fw, shift, flip)))
        decodes.append((pl, z, r))
        return pl

    def crop_scan() -> None:
        """Unrotated periods from the nominal one up to CROP_SCAN_MAX times the unfloored nominal period.

        A crop keeps the scale, so its period is the nominal period of the uncropped picture: 1 / sqrt(kept
        area) times the crop's (2x for a crop keeping 25 %). The autocorrelation often misses that lattice when
        only 3 or 4 tiles remain across; a geometric scan of steps CROP_SCAN_STEP finds it, all on the
        whitening of the nominal chip size (the sync statistic of a crop is the same or higher on it than on
        the whitening at the true chip size), then the best point is checked half a step either side.
        """
        n = int(math.log(scan_top / prior) / CROP_SCAN_STEP)
        start = len(results)
        search.prefetch([(prior * math.exp(i * CROP_SCAN_STEP), 0.0, prior / TILE) for i in range(1, n + 1)])
        for i in range(1, n + 1):
            run(prior * math.exp(i * CROP_SCAN_STEP), 0.0, prior / TILE)
        if len(results) > start:
            b = max(results[start:], key=lambda r: r[0])
            search.prefetch([(b[1] * math.exp(sign * CROP_SCAN_STEP), 0.0, prior / TILE) for sign in (-0.5, 0.5)])
            for sign in (-0.5, 0.5):
                run(b[1] * math.exp(sign * CROP_SCAN_STEP), 0.0, prior / TILE)

    # nominal geometry: the chip size the embedder picks for a picture of this size; a picture marked above
    # the MIN_CHIP floor and downscaled below it has chips under MIN_CHIP px, so try the unfloored size too
    prior = TILE * _chip_size(min(h, w)) * s
    priors = [prior]
    unfloored = min(h, w) / TILES_ACROSS * s
    if unfloored < prior * 0.99:
        priors.append(unfloored)
    scan_top = max(prior, CROP_SCAN_MAX * unfloored)
    search.prefetch([(p0, 0.0, None) for p0 in priors])
    for p0 in priors:
        run(p0, 0.0)
    found_pl = None
    first = max(results, key=lambda r: r[0])
    if first[0] >= EARLY_Z and not full_search:
        found_pl = try_decode(first)
    t2 = time.perf_counter()
    if found_pl is None:
        candidates = search.lattice_candidates(prior / TILE, N_CANDIDATES, s)
        ahead: list[tuple[float, float, float | None]] = []
        for period, theta in candidates:  # with the period steps below, folded ahead (speculatively) in one batch
            ahead.append((period, theta, None))
            if theta == 0.0 and (unfloored * 0.98 <= period < prior * 0.99 or period > scan_top * 1.01):
                ahead += [(period * (1.0 + k * PERIOD_STEP), theta, period / TILE) for k in (-1.0, 1.0, -2.0, 2.0)]
        search.prefetch(ahead)
        for period, theta in candidates:
            run(period, theta)
            r = results[-1]
            if (
                r[0] < EARLY_Z
                and theta == 0.0
                and (unfloored * 0.98 <= period < prior * 0.99 or period > scan_top * 1.01)
            ):
                # an unrotated lattice's points all sit on whole-pixel lags at once when the period is a whole
                # number of pixels, so the autocorrelation favours those periods; the sync statistic halves 1 %
                # away from the true period (1 px is 1.2 % of the 85 px period of a 25 % crop of a small
                # picture): try PERIOD_STEP either side, and one step further where that wins (on the same
                # whitening; unrotated folds are cheap). Periods in the crop scan's range are left to the scan,
                # and periods below the nominal one (unfloored) cannot be a mark's: neither resizing nor
                # cropping makes the tile smaller relative to the picture.
                family = [r]
                for sign in (-1.0, 1.0):
                    run(period * (1.0 + sign * PERIOD_STEP), theta, period / TILE)
                    family.append(results[-1])
                    if results[-1][0] > r[0]:
                        run(period * (1.0 + 2.0 * sign * PERIOD_STEP), theta, period / TILE)
                        family.append(results[-1])
                r = max(family, key=lambda x: x[0])
            # a candidate well above the noise is decoded at once, and the search stops when it decodes (the
            # p-value counts the hypotheses actually tried); the others are searched and refined as below
            if r[0] >= EARLY_Z and len(decodes) < MAX_DECODES and not tried_near(r):
                found_pl = try_decode(r)
                if found_pl is not None:
                    break
        if found_pl is None and max(r[0] for r in results) < EARLY_Z:
            crop_scan()
        t3 = time.perf_counter()
        timings["lattice"] = t3 - t2
        best = max(results, key=lambda r: r[0])
        if found_pl is None and best[0] >= REFINE_MIN_Z:  # refining pure noise only costs time
            if not any(d[2] is best for d in decodes):  # the unrefined lattice point often decodes already
                found_pl = try_decode(best)
            if found_pl is None:
                grid = len(results)
                refine(best[1], best[2])
        if found_pl is None:
            ranked = sorted(results, key=lambda r: -r[0])
            tried = [d[2][1:3] for d in decodes if d[2] is not best]
            for r in ranked:
                if len(decodes) >= MAX_DECODES:
                    break
                if any(d[2] is r for d in decodes):
                    continue
                if any(abs(math.log(r[1] / p)) < 0.01 and abs(r[2] - t) < 0.01 for p, t in tried):
                    continue
                tried.append(r[1:3])
                found_pl = try_decode(r)
                if found_pl is not None:
                    break
        timings["search"] = time.perf_counter() - t3
    else:
        timings["search"] = t2 - t1
    best = max(results, key=lambda r: r[0])
    used = next(d for d in decodes if d[0] is not None)[2] if found_pl is not None else best
    z, period, theta, shift, flip, _f, _c = used
    # the sync p-value is that of the best hypothesis before any hill climb: a climb maximises a continuous
    # random field locally and gains more than its hypothesis count pays for (on 10,000 null pictures the
    # climbed statistic gave 0.21 % of p-values below 0.001); the climbed geometry is still decoded
    # (every hypothesis still counts, the climb's included: conservative, and closer to uniform on the null)
    n_grid = grid if grid is not None else len(results)
    z_grid = max(r[0] for r in results[:n_grid])
    p_sync = _p_sync(z_grid, search.count)
    if found_pl is not None:
        p_value = min(1.0, _p_sync(min(z, z_grid), search.count) * viterbi[1] * CRC_FALSE_ACCEPT)
    else:
        p_value = p_sync
    found = found_pl is not None and p_value <= fpr
    c_pix = period / TILE / s
    timings["total"] = time.perf_counter() - t0
    details = {
        "sync_z": float(z),
        "period_px": float(period / s),
        "scale": float(period / prior),
        "rotation_deg": float(math.degrees(theta)),
        "flipped": bool(flip),
        "shift_px": (float(shift[0] / BINS * c_pix), float(shift[1] / BINS * c_pix)),
        "hypotheses": int(search.count),
        "decodes": int(viterbi[0]),
        "crc_checks": int(viterbi[1]),
        "crc_ok": found_pl is not None,
        "timings_ms": {k: round(v * 1000.0, 3) for k, v in timings.items()},
    }
    return Detection(
        found=bool(found),
        payload=found_pl.data if found else None,
        p_value=float(min(1.0, max(0.0, p_value))),
        score=float(z),
        details=details,
    )


def _check_fpr(fpr: Any, fn: str = "image.detect") -> float:
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not (0.0 < float(fpr) < 1.0):
        raise ValueError(f"{fn}: fpr must be a number in (0, 1), got {fpr!r}")
    return float(fpr)


def detect(
    image: Any,
    key: Key,
    *,
    fpr: float = DEFAULT_FPR,
    payload_bits: int = DEFAULT_BITS,
    full_search: bool = False,
    value_range: tuple[float, float] = (0, 1),
) -> Detection | list[Detection]:
    """Look for a watermark of ``key`` in ``image`` (same input forms as :func:`embed`).

    Returns a :class:`provmark.Detection`; ``found`` (with the payload) only when the CRC passes and the
    p-value is at most ``fpr``. ``full_search=True`` runs the whole geometric search even when the nominal
    geometry already decodes. A [N, C, H, W] tensor gives a list (see :func:`detect_batch`).
    """
    if _is_cuda_array(image):
        from . import gpu

        return gpu.image_detect(
            image, key, fpr=fpr, payload_bits=payload_bits, full_search=full_search, value_range=value_range
        )
    _host_value_range(value_range, "image.detect")
    if _is_torch(image) and image.dim() == 4:
        return detect_batch(image, key, fpr=fpr, payload_bits=payload_bits)
    secret = _key_secret(key)
    f = _check_fpr(fpr)
    ad = _adapt(image, "image.detect")
    return _detect_array(ad.array, secret, payload_bits, f, full_search)


def detect_batch(
    images: Any,
    key: Key,
    *,
    fpr: float = DEFAULT_FPR,
    payload_bits: int = DEFAULT_BITS,
    value_range: tuple[float, float] = (0, 1),
) -> list[Detection]:
    """Detect in N images (a list, an [N, H, W(, C)] array or an [N, C, H, W] tensor); one Detection each."""
    if _is_cuda_array(images):
        from . import gpu

        return gpu.image_detect_batch(images, key, fpr=fpr, payload_bits=payload_bits, value_range=value_range)
    _host_value_range(value_range, "image.detect_batch")
    secret = _key_secret(key)
    f = _check_fpr(fpr)
    arrays, _restore = _batch_arrays(images, "image.detect_batch")
    return [_detect_array(a, secret, payload_bits, f, False) for a in arrays]


# ---- files -------------------------------------------------------------------------------------------------
def embed_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    payload: Payload | bytes | int,
    key: Key,
    *,
    strength: float = 1.0,
    quality: int | None = None,
    overwrite: bool = False,
) -> None:
    """Watermark the image file ``src`` into ``dst`` (same format, size, ICC profile, EXIF/XMP).

    ``quality`` sets the JPEG/WebP quality (default: the source's estimated quality, else 92). ``dst`` is
    written atomically; writing onto ``src`` (or onto an existing ``dst``) needs ``overwrite=True``.
    """
    from .media import image_io

    secret_key = key
    _key_secret(secret_key)
    pl = Payload.coerce(payload)
    s = _check_strength(strength)
    decoded = image_io.read_image(src)
    _channels_ok_for_embed(decoded.pixels, "image.embed_file")
    marked = _embed_array(decoded.pixels, pl, secret_key.secret_bytes(), s)
    image_io.write_image(dst, marked, decoded, quality=quality, overwrite=overwrite, src=src)


def detect_file(
    path: str | os.PathLike[str], key: Key, *, fpr: float = DEFAULT_FPR, payload_bits: int = DEFAULT_BITS
) -> Detection:
    """Decode the image file ``path`` and look for a watermark of ``key``."""
    from .media import image_io

    secret = _key_secret(key)
    f = _check_fpr(fpr)
    decoded = image_io.read_image(path)
    return _detect_array(decoded.pixels, secret, payload_bits, f, False)
