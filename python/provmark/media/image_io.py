"""Image file decoding and encoding through Pillow (PNG, JPEG, WebP; TIFF, BMP and GIF's first frame read).

read_image(path) -> ImageFile (uint8 pixels [H, W] / [H, W, 3] / [H, W, 4] plus what is needed to write the file
back: format, mode, ICC profile, EXIF, XMP, PNG text chunks, DPI, JPEG quantisation tables and subsampling).
write_image(dst, pixels, like) encodes in the source's format (or the one dst's extension names) with the
source's metadata, atomically: it writes a temporary file next to dst and renames it, so a failure never
leaves a partial dst, and it refuses to overwrite an existing file (in particular the input) unless
overwrite=True.

Decompression-bomb guard: the declared size is checked before any pixel is decoded (MAX_PIXELS, default
200 megapixels; pass max_pixels to change it).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import numpy as np

from .._fileio import atomic_output, same_file

__all__ = ["MAX_PIXELS", "ImageFile", "read_image", "write_image"]

MAX_PIXELS = 200_000_000

_EXT_FORMAT = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_WRITABLE = {"PNG", "JPEG", "WEBP", "TIFF", "BMP"}


@dataclasses.dataclass
class ImageFile:
    """A decoded image file."""

    pixels: np.ndarray  # uint8 [H, W] (L), [H, W, 3] (RGB) or [H, W, 4] (RGBA)
    format: str  # Pillow format name of the source ("PNG", "JPEG", "WEBP", ...)
    mode: str  # Pillow mode of the source ("RGB", "L", "P", "CMYK", ...)
    info: dict[str, Any]  # metadata to carry over: icc_profile, exif, xmp, dpi, png text
    jpeg_qtables: Any  # the source's JPEG quantisation tables (None unless JPEG)
    jpeg_subsampling: int  # Pillow subsampling code of the source JPEG (-1 unknown)
    webp_lossless: bool
    path: str


def _pil():
    from PIL import Image

    return Image


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> ImageFile:
    """Decode an image file. Raises FileNotFoundError, or ValueError for a non-image, truncated, animated or
    over-large file (declared width x height above ``max_pixels``)."""
    Image = _pil()
    from PIL import UnidentifiedImageError

    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"read_image: no such file: {p}")
    with warnings.catch_warnings():
        # our own size check below replaces Pillow's bomb warning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(p)
        except UnidentifiedImageError:
            raise ValueError(f"read_image: not an image file (or an unsupported format): {p}") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"read_image: {p}: declared size too large ({e})") from None
        with im:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise ValueError(f"read_image: {p}: empty image ({w}x{h})")
            if w * h > max_pixels:
                raise ValueError(
                    f"read_image: {p}: declared size {w}x{h} exceeds the limit of {max_pixels} pixels "
                    "(decompression-bomb guard; pass max_pixels to raise it)"
                )
            if getattr(im, "n_frames", 1) > 1 and im.format != "TIFF":
                raise ValueError(f"read_image: {p}: animated / multi-frame images are not supported")
            fmt = im.format or ""
            mode = im.mode
            info = _carry_info(im)
            qtables = getattr(im, "quantization", None) if fmt == "JPEG" else None
            subsampling = -1
            if fmt == "JPEG":
                try:
                    from PIL import JpegImagePlugin

                    subsampling = JpegImagePlugin.get_sampling(im)
                except Exception:  # pragma: no cover - depends on the Pillow build
                    subsampling = -1
            try:
                im.load()
            except (OSError, SyntaxError, ValueError) as e:
                raise ValueError(f"read_image: {p}: cannot decode ({e}); the file may be truncated") from None
            except Image.DecompressionBombError as e:
                raise ValueError(f"read_image: {p}: declared size too large ({e})") from None
            if mode in ("RGB", "L", "RGBA"):
                conv = im
            elif mode in ("LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
                conv = im.convert("RGBA")
            elif mode in ("1", "I", "I;16", "I;16B", "I;16L", "F"):
                conv = im.convert("L")
            else:
                conv = im.convert("RGB")
            pixels = np.array(conv, dtype=np.uint8)
    lossless = False
    if fmt == "WEBP":
        with open(p, "rb") as fh:
            head = fh.read(64)
        lossless = b"VP8L" in head
    return ImageFile(
        pixels=pixels,
        format=fmt,
        mode=mode,
        info=info,
        jpeg_qtables=qtables,
        jpeg_subsampling=subsampling,
        webp_lossless=lossless,
        path=p,
    )


def _carry_info(im: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("icc_profile", "exif", "dpi"):
        v = im.info.get(k)
        if v:
            out[k] = v
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if xmp:
        out["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    if im.format == "PNG":
        text = getattr(im, "text", None) or {}
        out["png_text"] = {k: v for k, v in text.items() if isinstance(v, str)}
    return out


def write_image(
    dst: str | os.PathLike[str],
    pixels: np.ndarray,
    like: ImageFile,
    *,
    quality: int | None = None,
    overwrite: bool = False,
    src: str | os.PathLike[str] | None = None,
) -> str:
    """Encode ``pixels`` (uint8, the layout of ``like.pixels``) to ``dst`` like the source file ``like``.

    Format: the one ``dst``'s extension names, else the source's. JPEG keeps the source's quantisation tables
    and chroma subsampling unless ``quality`` is given; WebP uses ``quality`` (default 90, or lossless when
    the source was lossless). Returns the path written.
    """
    Image = _pil()
    d = os.fspath(dst)
    if quality is not None and (isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100):
        raise ValueError(f"write_image: quality must be an int in [1, 100], got {quality!r}")
    srcs = [s for s in (src, like.path) if s is not None]
    if os.path.exists(d) and not overwrite:
        if any(same_file(os.fspath(s), d) for s in srcs if os.path.exists(os.fspath(s))):
            raise FileExistsError(f"write_image: refusing to overwrite the input file {d} (pass overwrite=True)")
        raise FileExistsError(f"write_image: {d} exists (pass overwrite=True to replace it)")
    if pixels.dtype != np.uint8 or pixels.shape != like.pixels.shape:
        raise ValueError(
            f"write_image: pixels must be uint8 of shape {like.pixels.shape}, got {pixels.dtype} {pixels.shape}"
        )
    ext = os.path.splitext(d)[1].lower()
    fmt = _EXT_FORMAT.get(ext, like.format)
    if fmt not in _WRITABLE:
        fmt = "PNG"
    im = Image.fromarray(pixels)
    if like.mode == "LA" and im.mode == "RGBA":
        im = im.convert("LA")
    if fmt == "JPEG" and im.mode == "RGBA":
        raise ValueError("write_image: JPEG cannot hold an alpha channel; write PNG or WebP instead")
    kw: dict[str, Any] = {}
    info = like.info
    if info.get("icc_profile"):
        kw["icc_profile"] = info["icc_profile"]
    if info.get("exif") and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = info["exif"]
    if info.get("dpi") and fmt in ("JPEG", "PNG", "TIFF"):
        kw["dpi"] = info["dpi"]
    if info.get("xmp") and fmt in ("JPEG", "WEBP"):
        kw["xmp"] = info["xmp"]
    if fmt == "PNG":
        from PIL import PngImagePlugin

        pinfo = PngImagePlugin.PngInfo()
        for k, v in info.get("png_text", {}).items():
            pinfo.add_itxt(k, v)
        if info.get("xmp") and "XML:com.adobe.xmp" not in info.get("png_text", {}):
            pinfo.add_itxt("XML:com.adobe.xmp", info["xmp"].decode("utf-8", "replace"))
        kw["pnginfo"] = pinfo
    elif fmt == "JPEG":
        if quality is not None:
            kw["quality"] = quality
        elif like.format == "JPEG" and like.jpeg_qtables:
            kw["qtables"] = like.jpeg_qtables
            if like.jpeg_subsampling >= 0:
                kw["subsampling"] = like.jpeg_subsampling
        else:
            kw["quality"] = 92
    elif fmt == "WEBP":
        if quality is None and like.format == "WEBP" and like.webp_lossless:
            kw["lossless"] = True
        else:
            kw["quality"] = 90 if quality is None else quality
    with atomic_output(d, prefix=".provmark-", suffix=ext or ".tmp") as tmp, open(tmp, "wb") as fh:
        im.save(fh, format=fmt, **kw)
        fh.flush()
        os.fsync(fh.fileno())
    return d
