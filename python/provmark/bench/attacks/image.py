"""Image attacks (Pillow + numpy). See :mod:`provmark.bench.attacks` for the media conventions.

Each function below is registered under its family name; its first two arguments are the image and the
attack's seeded ``numpy.random.Generator``, the rest are the attack's parameters (they appear in its name).
Photometric attacks follow torchvision's definitions (brightness multiplies, contrast and saturation blend
with the mean grey / the grey image, ITU-R 601 luma weights), so figures compare with published benchmarks.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from ._base import checker as _checker
from ._base import image_restore, image_to_float, image_to_uint8, register, uint8_restore
from ._base import need as _need
from ._base import number as _num

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ----------------------------------------------------------------------------------- PIL plumbing


def _to_pil(u: np.ndarray) -> Image.Image:
    c = u.shape[2]
    if c == 1:
        return Image.fromarray(u[:, :, 0], "L")
    if c == 3:
        return Image.fromarray(u, "RGB")
    return Image.fromarray(u, "RGBA")


def _from_pil(im: Image.Image, channels: int) -> np.ndarray:
    want = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if im.mode != want:
        im = im.convert(want)
    a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def _pil_op(img: np.ndarray, op) -> np.ndarray:
    """Apply ``op(PIL.Image) -> PIL.Image`` to ``img`` keeping its dtype, range and channel count."""
    u, token = image_to_uint8(img)
    out = _from_pil(op(_to_pil(u)), u.shape[2])
    return uint8_restore(out, token)


def encode(img: np.ndarray, fmt: str, **options) -> bytes:
    """Encode ``img`` (uint8 or float, see module doc) with Pillow as ``fmt`` (JPEG, WEBP, AVIF, PNG)."""
    u, _ = image_to_uint8(img)
    im = _to_pil(u)
    if fmt.upper() == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _codec_roundtrip(img: np.ndarray, fmt: str, **options) -> np.ndarray:
    u, token = image_to_uint8(img)
    data = encode(u, fmt, **options)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        out = _from_pil(im, u.shape[2] if not (fmt.upper() == "JPEG" and u.shape[2] == 4) else 3)
    if u.shape[2] == 4 and out.shape[2] == 3:  # JPEG drops alpha: keep the original alpha plane
        out = np.concatenate([out, u[:, :, 3:]], axis=2)
    return uint8_restore(out, token)


# ------------------------------------------------------------------------------------ identity


@register("image", strength=None)
def identity(img, rng):
    """No change (the reference row of every table)."""
    _f, _token = image_to_float(img)  # validates
    return img.copy()


# ------------------------------------------------------------------------------------ codecs


def _check_q(q, subsampling="420"):
    _need(
        isinstance(q, int) and not isinstance(q, bool) and 1 <= q <= 100,
        f"q must be an int in 1..100, got {q!r}",
    )
    _need(
        str(subsampling) in ("420", "422", "444"),
        f"subsampling must be '420', '422' or '444', got {subsampling!r}",
    )


@_checker(_check_q)
@register("image", strength="q")
def jpeg(img, rng, q, subsampling="420"):
    """JPEG re-encode at quality ``q`` (libjpeg scale) with 4:2:0, 4:2:2 or 4:4:4 chroma subsampling."""
    ss = {"444": 0, "422": 1, "420": 2}[str(subsampling)]
    return _codec_roundtrip(img, "JPEG", quality=int(q), subsampling=ss)


@_checker(lambda q: _check_q(q))
@register("image", strength="q", available=lambda: bool(features.check("webp")))
def webp(img, rng, q):
    """Lossy WebP re-encode at quality ``q``."""
    return _codec_roundtrip(img, "WEBP", quality=int(q), method=4)


@_checker(lambda q: _check_q(q))
@register("image", strength="q", available=lambda: bool(features.check("avif")))
def avif(img, rng, q):
    """AVIF re-encode at quality ``q`` (only where Pillow was built with AVIF)."""
    return _codec_roundtrip(img, "AVIF", quality=int(q), speed=8)


# ------------------------------------------------------------------------------------ geometry


def _resize_u8(u: np.ndarray, h: int, w: int) -> np.ndarray:
    return _from_pil(_to_pil(u).resize((w, h), Image.BICUBIC), u.shape[2])


def _check_scale(scale, back=False):
    s = _num(scale, "scale")
    _need(0.02 <= s <= 8, f"scale must be in 0.02..8, got {scale}")
    _need(isinstance(back, bool), f"back must be True or False, got {back!r}")


@_checker(_check_scale)
@register("image", strength="scale")
def resize(img, rng, scale, back=False):
    """Bicubic resize by ``scale``; kept at the new size, or resized back to the original with
    ``back=True``."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    nh, nw = max(2, round(h * scale)), max(2, round(w * scale))
    out = _resize_u8(u, nh, nw)
    if back:
        out = _resize_u8(out, h, w)
    return uint8_restore(out, token)


def _check_short(short, back=False):
    _need(
        isinstance(short, int) and not isinstance(short, bool) and 8 <= short <= 16384,
        f"short must be an int in 8..16384, got {short!r}",
    )
    _need(isinstance(back, bool), f"back must be True or False, got {back!r}")


@_checker(_check_short)
@register("image", strength="short")
def resize_to(img, rng, short, back=False):
    """Resize so the short side is ``short`` pixels (aspect kept); ``back=True`` resizes back afterwards."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    s = short / min(h, w)
    nh, nw = max(2, round(h * s)), max(2, round(w * s))
    out = _resize_u8(u, nh, nw)
    if back:
        out = _resize_u8(out, h, w)
    return uint8_restore(out, token)


def _check_offset(offset):
    if isinstance(offset, str):
        _need(offset in ("random", "center"), f"offset must be 'random', 'center' or (fy, fx), got {offset!r}")
    else:
        _need(
            isinstance(offset, (tuple, list))
            and len(offset) == 2
            and all(not isinstance(v, bool) and isinstance(v, (int, float)) and 0 <= v <= 1 for v in offset),
            f"offset must be 'random', 'center' or a (fy, fx) pair of fractions in 0..1, got {offset!r}",
        )


def _place(rng, free_h: int, free_w: int, offset) -> tuple[int, int]:
    """Top-left corner for a window with ``free_h``/``free_w`` pixels of slack."""
    if offset == "random":
        return int(rng.integers(0, free_h + 1)), int(rng.integers(0, free_w + 1))
    if offset == "center":
        return free_h // 2, free_w // 2
    fy, fx = offset
    return round(free_h * fy), round(free_w * fx)


def _check_crop(area, offset="random"):
    a = _num(area, "area")
    _need(0 < a <= 1, f"area must be in (0, 1], got {area}")
    _check_offset(offset)


@_checker(_check_crop)
@register("image", strength="area")
def crop(img, rng, area, offset="random"):
    """Crop keeping the fraction ``area`` of the pixels (aspect kept) at a random, centred or given offset."""
    f, _token = image_to_float(img)
    h, w = f.shape[:2]
    s = math.sqrt(area)
    ch, cw = max(2, min(h, round(h * s))), max(2, min(w, round(w * s)))
    y, x = _place(rng, h - ch, w - cw, offset)
    if img.ndim == 2:
        return img[y : y + ch, x : x + cw].copy()
    return img[y : y + ch, x : x + cw, :].copy()


def _max_inner_rect(w: int, h: int, angle_rad: float) -> tuple[int, int]:
    """Largest axis-aligned rectangle inside a ``w`` x ``h`` rectangle rotated by ``angle_rad``."""
    if w <= 0 or h <= 0:
        return 0, 0
    width_is_longer = w >= h
    side_long, side_short = (w, h) if width_is_longer else (h, w)
    sin_a, cos_a = abs(math.sin(angle_rad)), abs(math.cos(angle_rad))
    if side_short <= 2.0 * sin_a * cos_a * side_long or abs(sin_a - cos_a) < 1e-10:
        x = 0.5 * side_short
        wr, hr = (x / sin_a, x / cos_a) if width_is_longer else (x / cos_a, x / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        wr, hr = (w * cos_a - h * sin_a) / cos_2a, (h * cos_a - w * sin_a) / cos_2a
    return math.floor(wr), math.floor(hr)


def _check_rotate(deg, crop=True):
    d = _num(deg, "deg")
    _need(-180 <= d <= 180, f"deg must be in -180..180, got {deg}")
    _need(isinstance(crop, bool), f"crop must be True or False, got {crop!r}")


@_checker(_check_rotate)
@register("image", strength="deg")
def rotate(img, rng, deg, crop=True):
    """Rotate by ``deg`` degrees (counter-clockwise, bicubic); ``crop=True`` keeps the largest valid
    rectangle."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    out = _from_pil(_to_pil(u).rotate(deg, resample=Image.BICUBIC, expand=False), u.shape[2])
    if crop and deg % 360 != 0:
        cw, ch = _max_inner_rect(w, h, math.radians(deg))
        cw, ch = max(2, min(w, cw - 2)), max(2, min(h, ch - 2))  # 1 px margin against interpolation bleed
        y, x = (h - ch) // 2, (w - cw) // 2
        out = out[y : y + ch, x : x + cw]
    return uint8_restore(np.ascontiguousarray(out), token)


def _perspective_coeffs(dst, src):
    """Coefficients for PIL's PERSPECTIVE transform mapping output points ``dst`` to input points ``src``."""
    a = []
    b = []
    for (x, y), (X, Y) in zip(dst, src, strict=False):
        a.append([x, y, 1, 0, 0, 0, -X * x, -X * y])
        a.append([0, 0, 0, x, y, 1, -Y * x, -Y * y])
        b += [X, Y]
    return np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)).tolist()


def _check_strength(strength):
    s = _num(strength, "strength")
    _need(0 <= s <= 0.45, f"strength must be in 0..0.45, got {strength}")


@_checker(_check_strength)
@register("image", strength="strength")
def perspective(img, rng, strength):
    """Perspective warp: each corner moves inward by up to ``strength`` of the side, warped back to full
    frame.

    The quadrilateral spanned by the moved corners is stretched onto the whole output, so there are no
    empty borders (same size as the input).
    """
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    d = rng.uniform(0, strength, size=(4, 2)) * np.array([w, h])
    src = [(d[0, 0], d[0, 1]), (w - d[1, 0], d[1, 1]), (w - d[2, 0], h - d[2, 1]), (d[3, 0], h - d[3, 1])]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = _perspective_coeffs(dst, src)
    out = _to_pil(u).transform((w, h), Image.PERSPECTIVE, coeffs, Image.BICUBIC)
    return uint8_restore(_from_pil(out, u.shape[2]), token)


def _check_axis(axis="h"):
    _need(axis in ("h", "v"), f"axis must be 'h' (left-right) or 'v' (top-bottom), got {axis!r}")


@_checker(_check_axis)
@register("image")
def flip(img, rng, axis="h"):
    """Mirror left-right (``axis='h'``) or top-bottom (``axis='v'``)."""
    image_to_float(img)  # validates
    return np.ascontiguousarray(img[:, ::-1] if axis == "h" else img[::-1])


# ------------------------------------------------------------------------------------ filtering


def _check_radius(radius):
    r = _num(radius, "radius")
    _need(0 < r <= 50, f"radius must be in (0, 50], got {radius}")


@_checker(_check_radius)
@register("image", strength="radius")
def blur(img, rng, radius):
    """Gaussian blur with standard deviation ``radius`` pixels (Pillow's GaussianBlur)."""
    return _pil_op(img, lambda im: im.filter(ImageFilter.GaussianBlur(radius)))


def _check_size(size):
    _need(
        isinstance(size, int) and not isinstance(size, bool) and size >= 3 and size % 2 == 1 and size <= 15,
        f"size must be an odd int in 3..15, got {size!r}",
    )


@_checker(_check_size)
@register("image", strength="size")
def median(img, rng, size):
    """Median filter over a ``size`` x ``size`` window."""
    return _pil_op(img, lambda im: im.filter(ImageFilter.MedianFilter(size)))


def _check_sigma(sigma):
    s = _num(sigma, "sigma")
    _need(0 <= s <= 1, f"sigma must be in 0..1, got {sigma}")


@_checker(_check_sigma)
@register("image", strength="sigma")
def noise(img, rng, sigma):
    """Additive Gaussian noise of standard deviation ``sigma`` (in units of the full 0..1 range), clipped."""
    f, token = image_to_float(img)
    f = f + rng.normal(0.0, sigma, size=f.shape).astype(np.float32)
    return image_restore(f, token)


# ------------------------------------------------------------------------------------ photometric


def _color(f: np.ndarray) -> np.ndarray:
    return f[:, :, :3] if f.shape[2] >= 3 else f[:, :, :1]


def _gray(f: np.ndarray) -> np.ndarray:
    c = _color(f)
    if c.shape[2] == 1:
        return c
    return (c @ _LUMA)[:, :, None]


def _with_color(f: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = f.copy()
    out[:, :, : c.shape[2]] = c
    return out


def _check_factor(factor):
    v = _num(factor, "factor")
    _need(0 <= v <= 10, f"factor must be in 0..10, got {factor}")


@_checker(_check_factor)
@register("image", strength="factor")
def brightness(img, rng, factor):
    """Multiply intensities by ``factor`` (torchvision ``adjust_brightness``), clipped."""
    f, token = image_to_float(img)
    return image_restore(_with_color(f, _color(f) * factor), token)


@_checker(_check_factor)
@register("image", strength="factor")
def contrast(img, rng, factor):
    """Blend with the mean grey level by ``factor`` (torchvision ``adjust_contrast``), clipped."""
    f, token = image_to_float(img)
    m = float(_gray(f).mean())
    return image_restore(_with_color(f, (_color(f) - m) * factor + m), token)


@_checker(_check_factor)
@register("image", strength="factor")
def saturation(img, rng, factor):
    """Blend with the grey image by ``factor`` (0 = grey, 1 = unchanged; torchvision
    ``adjust_saturation``)."""
    f, token = image_to_float(img)
    g = _gray(f)
    return image_restore(_with_color(f, (_color(f) - g) * factor + g), token)


def _check_gamma(gamma):
    g = _num(gamma, "gamma")
    _need(0.05 <= g <= 20, f"gamma must be in 0.05..20, got {gamma}")


@_checker(_check_gamma)
@register("image", strength="gamma")
def gamma(img, rng, gamma):
    """Gamma curve ``x ** gamma`` on 0..1 intensities."""
    f, token = image_to_float(img)
    return image_restore(_with_color(f, np.power(np.clip(_color(f), 0, 1), gamma)), token)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Vectorised RGB (0..1, [..., 3]) to HSV with hue in 0..1."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx = rgb.max(-1)
    mn = rgb.min(-1)
    d = mx - mn
    s = np.where(mx > 0, d / np.maximum(mx, 1e-12), 0.0)
    dd = np.maximum(d, 1e-12)
    h = np.where(mx == r, (g - b) / dd, np.where(mx == g, 2.0 + (b - r) / dd, 4.0 + (r - g) / dd))
    h = np.where(d > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, mx], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    fr = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * fr), v * (1 - s * (1 - fr))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def _check_hue(shift):
    v = _num(shift, "shift")
    _need(-0.5 <= v <= 0.5, f"shift must be in -0.5..0.5 (fraction of the colour circle), got {shift}")


@_checker(_check_hue)
@register("image", strength="shift")
def hue(img, rng, shift):
    """Rotate hue by ``shift`` turns of the colour circle (torchvision ``adjust_hue``); grey images
    unchanged."""
    f, token = image_to_float(img)
    if f.shape[2] < 3:
        return img.copy()
    hsv = rgb_to_hsv(f[:, :, :3].astype(np.float64))
    hsv[..., 0] = (hsv[..., 0] + shift) % 1.0
    return image_restore(_with_color(f, hsv_to_rgb(hsv).astype(np.float32)), token)


# ------------------------------------------------------------------------------------ overlays


def _font(px: int):
    try:
        return ImageFont.load_default(size=max(8, px))
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def _check_overlay(size, opacity=0.8):
    s = _num(size, "size")
    o = _num(opacity, "opacity")
    _need(0 < s <= 1, f"size must be in (0, 1], got {size}")
    _need(0 <= o <= 1, f"opacity must be in 0..1, got {opacity}")


def _composite(u: np.ndarray, layer: Image.Image, rng, opacity: float) -> np.ndarray:
    """Alpha-blend RGBA ``layer`` onto ``u`` at a seeded random position."""
    h, w = u.shape[:2]
    lw, lh = layer.size
    lw, lh = min(lw, w), min(lh, h)
    layer = layer.crop((0, 0, lw, lh))
    y, x = int(rng.integers(0, h - lh + 1)), int(rng.integers(0, w - lw + 1))
    la = np.asarray(layer).astype(np.float32) / 255.0
    alpha = la[:, :, 3:4] * opacity
    base = u.astype(np.float32) / 255.0
    region = base[y : y + lh, x : x + lw]
    col = la[:, :, :3] if u.shape[2] >= 3 else (la[:, :, :3] @ _LUMA)[:, :, None]
    nc = col.shape[2]
    region[:, :, :nc] = region[:, :, :nc] * (1 - alpha) + col * alpha
    return np.rint(np.clip(base, 0, 1) * 255).astype(np.uint8)


@_checker(_check_overlay)
@register("image", strength="size")
def overlay_text(img, rng, size, opacity=0.8, text="provmark"):
    """Draw ``text`` (white, dark outline) with height ``size`` of the short side at a random position."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    px = max(8, round(min(h, w) * size))
    font = _font(px)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, t, r, b = probe.textbbox((0, 0), str(text), font=font, stroke_width=max(1, px // 12))
    layer = Image.new("RGBA", (max(1, r - left + 2), max(1, b - t + 2)), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(
        (-left + 1, -t + 1),
        str(text),
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=max(1, px // 12),
        stroke_fill=(20, 20, 20, 255),
    )
    return uint8_restore(_composite(u, layer, rng, opacity), token)


def _logo(px: int) -> Image.Image:
    """A simple flat 'brand' logo: coloured disc, ring and a white triangle."""
    s = 4 * px  # supersample for smooth edges
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    d.ellipse((0, 0, s - 1, s - 1), fill=(230, 57, 70, 255))
    d.ellipse((s // 8, s // 8, s - s // 8, s - s // 8), outline=(255, 255, 255, 255), width=max(1, s // 24))
    d.polygon([(s * 0.38, s * 0.3), (s * 0.38, s * 0.7), (s * 0.72, s * 0.5)], fill=(255, 255, 255, 255))
    return layer.resize((px, px), Image.LANCZOS)


@_checker(_check_overlay)
@register("image", strength="size")
def overlay_logo(img, rng, size, opacity=0.8):
    """Blend a logo of side ``size`` x short side at a random position with ``opacity``."""
    u, token = image_to_uint8(img)
    px = max(4, round(min(u.shape[:2]) * size))
    return uint8_restore(_composite(u, _logo(px), rng, opacity), token)


def _background(rng, h: int, w: int, channels: int) -> np.ndarray:
    """Seeded smooth colour field with fine grain, a stand-in for "another image" in collages."""
    coarse = rng.uniform(0, 255, size=(max(2, h // 64), max(2, w // 64), 3)).astype(np.uint8)
    bg = np.asarray(Image.fromarray(coarse, "RGB").resize((w, h), Image.BICUBIC)).astype(np.float32)
    bg += rng.normal(0, 6, size=bg.shape).astype(np.float32)
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    if channels == 1:
        return (bg.astype(np.float32) @ _LUMA).round().astype(np.uint8)[:, :, None]
    if channels == 4:
        return np.concatenate([bg, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return bg


def _check_collage(area):
    a = _num(area, "area")
    _need(0.05 <= a <= 1, f"area must be in 0.05..1, got {area}")


@_checker(_check_collage)
@register("image", strength="area")
def collage(img, rng, area):
    """Paste the image (unscaled) into a larger canvas so it covers ``area`` of the result.

    The surrounding content is a seeded smooth colour field; the paste position is random.
    """
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    s = 1.0 / math.sqrt(area)
    ch, cw = max(h, round(h * s)), max(w, round(w * s))
    canvas = _background(rng, ch, cw, u.shape[2])
    y, x = int(rng.integers(0, ch - h + 1)), int(rng.integers(0, cw - w + 1))
    canvas[y : y + h, x : x + w] = u
    return uint8_restore(canvas, token)


# ------------------------------------------------------------------------------------ combos


def _check_social(short=1080, q=75, upscale=False):
    _check_short(short)
    _check_q(q)
    _need(isinstance(upscale, bool), f"upscale must be True or False, got {upscale!r}")


@_checker(_check_social)
@register("image")
def social(img, rng, short=1080, q=75, upscale=False):
    """Social-network upload: short side brought to ``short`` px (only down unless ``upscale``), JPEG
    ``q``."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    if min(h, w) > short or upscale:
        s = short / min(h, w)
        u = _resize_u8(u, max(2, round(h * s)), max(2, round(w * s)))
    return uint8_restore(_codec_roundtrip(u, "JPEG", quality=q, subsampling=2), token)


def _check_screenshot(scale=0.8, area=0.9, q=85):
    _check_scale(scale)
    _check_crop(area)
    _check_q(q)


@_checker(_check_screenshot)
@register("image")
def screenshot(img, rng, scale=0.8, area=0.9, q=85):
    """Screenshot of the image on screen: display scaling ``scale``, crop to ``area`` at a random offset,
    JPEG ``q``."""
    u, token = image_to_uint8(img)
    h, w = u.shape[:2]
    u = _resize_u8(u, max(2, round(h * scale)), max(2, round(w * scale)))
    u = crop(u, rng, area, "random")
    return uint8_restore(_codec_roundtrip(u, "JPEG", quality=q, subsampling=2), token)


@register("image")
def omniseal(img, rng):
    """OmniSeal Bench combination JPEG80 ∘ brightness 1.5 ∘ crop 0.5 (crop first, then brightness, then
    JPEG)."""
    out = crop(img, rng, 0.5, "random")
    out = brightness(out, rng, 1.5)
    return jpeg(out, rng, 80)
