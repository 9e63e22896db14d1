"""Pillow attacks for the image watermark benchmarks, applied as a user would (uint8 RGB/gray arrays in and out).

Each attack takes (img, rng) and returns a uint8 array; `rng` picks random offsets where the attack has any.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a)


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im)


def jpeg(q: int):
    def f(a, rng=None):
        buf = io.BytesIO()
        _pil(a).save(buf, format="JPEG", quality=q)
        return _arr(Image.open(io.BytesIO(buf.getvalue())))

    return f


def webp(q: int):
    def f(a, rng=None):
        buf = io.BytesIO()
        _pil(a).save(buf, format="WEBP", quality=q)
        return _arr(Image.open(io.BytesIO(buf.getvalue())))

    return f


def resize(s: float):
    def f(a, rng=None):
        h, w = a.shape[:2]
        return _arr(_pil(a).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC))

    return f


def resize_short(n: int):
    def f(a, rng=None):
        h, w = a.shape[:2]
        s = n / min(h, w)
        return _arr(_pil(a).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC))

    return f


def crop(area: float):
    """Keep `area` of the image: same aspect ratio, random offset."""

    def f(a, rng=None):
        rng = rng or np.random.default_rng(0)
        h, w = a.shape[:2]
        s = np.sqrt(area)
        ch, cw = round(h * s), round(w * s)
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        return a[y0 : y0 + ch, x0 : x0 + cw].copy()

    return f


def rotate(deg: float):
    """Rotate (bicubic) and crop to the largest axis-aligned rectangle of valid pixels."""

    def f(a, rng=None):
        h, w = a.shape[:2]
        r = _pil(a).rotate(deg, resample=Image.BICUBIC, expand=False)
        t = np.deg2rad(abs(deg))
        # largest valid rectangle of the same aspect for a w x h image rotated by t (centred)
        c, s = np.cos(t), np.sin(t)
        k = min(w / (w * c + h * s), h / (w * s + h * c))
        cw, ch = int(w * k) - 2, int(h * k) - 2
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        return _arr(r)[y0 : y0 + ch, x0 : x0 + cw].copy()

    return f


def enhance(kind: str, v: float):
    def f(a, rng=None):
        e = {
            "brightness": ImageEnhance.Brightness,
            "contrast": ImageEnhance.Contrast,
            "saturation": ImageEnhance.Color,
        }[kind]
        if kind == "saturation" and a.ndim == 2:
            return a
        return _arr(e(_pil(a)).enhance(v))

    return f


def gamma(g: float):
    def f(a, rng=None):
        lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)
        return lut[a]

    return f


def flip(a, rng=None):
    return a[:, ::-1].copy()


def blur(r: float):
    def f(a, rng=None):
        return _arr(_pil(a).filter(ImageFilter.GaussianBlur(r)))

    return f


def noise(sigma: float):
    def f(a, rng=None):
        rng = rng or np.random.default_rng(0)
        n = rng.normal(0.0, sigma * 255.0, a.shape)
        return np.clip(np.rint(a + n), 0, 255).astype(np.uint8)

    return f


def chain(*fs):
    def f(a, rng=None):
        for g in fs:
            a = g(a, rng)
        return a

    return f


def social(a, rng=None):
    return chain(resize_short(1080), jpeg(75))(a, rng)


def screenshot(a, rng=None):
    return chain(resize(0.8), crop(0.8), jpeg(85))(a, rng)


ATTACKS = {
    "clean": lambda a, rng=None: a,
    "jpeg50": jpeg(50),
    "jpeg30": jpeg(30),
    "webp75": webp(75),
    "resize0.5": resize(0.5),
    "resize2": resize(2.0),
    "resize0.7": resize(0.7),
    "resize256": resize_short(256),
    "bright+30": enhance("brightness", 1.3),
    "bright-30": enhance("brightness", 0.7),
    "contrast0.6": enhance("contrast", 0.6),
    "contrast1.5": enhance("contrast", 1.5),
    "gamma0.7": gamma(0.7),
    "gamma1.4": gamma(1.4),
    "sat0": enhance("saturation", 0.0),
    "sat2": enhance("saturation", 2.0),
    "crop50": crop(0.5),
    "crop25": crop(0.25),
    "rot3": rotate(3.0),
    "rot5": rotate(5.0),
    "rot-5": rotate(-5.0),
    "flip": flip,
    "blur2": blur(2.0),
    "noise0.05": noise(0.05),
    "social": social,
    "screenshot": screenshot,
}
