"""Explicit labels burned into images and video frames (GB 45438 5.2 and 5.4).

Rules implemented (LABELING.md section 4):
- text prompt containing the AI element and the generation element (default "AI生成"; wording checked);
- at an edge or a corner of the picture (eight positions; bottom-right is Annex C.2's example and our
  default);
- text height >= 5% of the shortest side. "Text height" is taken conservatively as the ink height of the
  shortest
  capital/CJK/digit glyph of the wording (so "AI" in "AI生成" is itself >= 5%, not just the taller CJK
  glyphs);
- legible on any background: a semi-opaque contrasting box behind the text (default) or a dark outline;
- video: the same label on the opening frames for at least ``duration_s`` = 2 s at normal playback speed.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import numpy as np

from .elements import DEFAULT_WORDING, check_wording
from .errors import LabelError
from .fonts import find_font, load_font

__all__ = [
    "POSITIONS",
    "ImageLabel",
    "ImageLabelStyle",
    "VideoLabeler",
    "label_video_frames",
    "render_image_label",
]

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left", "bottom", "top", "left", "right")
MIN_HEIGHT_FRAC = 0.05  # GB 45438 5.2 / 5.4: text height >= 5% of the shortest side
_TALL_CATEGORIES = ("Lu", "Lo", "Nd")  # capitals, CJK ideographs / other letters, digits


@dataclass(frozen=True)
class ImageLabelStyle:
    """Appearance of an image / video-frame label. All sizes are relative to the shortest side unless
    noted."""

    text: str = DEFAULT_WORDING
    position: str = "bottom-right"
    height_frac: float = 0.05  #: minimum glyph ink height / shortest side; below 0.05 is refused
    min_height_px: int = 10  #: floor in pixels so tiny images still get a readable label (error if it cannot fit)
    backdrop: str = "box"  #: "box" (semi-opaque box behind the text) or "outline" (dark stroke around the glyphs)
    font: str | None = None  #: font file; default: first installed font that renders the text
    text_color: tuple[int, int, int] = (255, 255, 255)
    box_color: tuple[int, int, int] = (0, 0, 0)
    box_alpha: float = 0.65
    margin_frac: float = 0.02  #: gap between the label and the picture edge

    def __post_init__(self) -> None:
        check_wording(self.text, "image label text")
        if self.position not in POSITIONS:
            raise LabelError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if not (isinstance(self.height_frac, (int, float)) and MIN_HEIGHT_FRAC <= self.height_frac <= 0.5):
            raise LabelError(
                f"height_frac must be in [{MIN_HEIGHT_FRAC}, 0.5] (GB 45438 5.2), got {self.height_frac!r}"
            )
        if self.backdrop not in ("box", "outline"):
            raise LabelError(f"backdrop must be 'box' or 'outline', got {self.backdrop!r}")
        if not 0.5 <= self.box_alpha <= 1.0:
            raise LabelError(f"box_alpha must be in [0.5, 1] to keep the label legible, got {self.box_alpha!r}")
        if not 0 <= self.margin_frac <= 0.2:
            raise LabelError(f"margin_frac must be in [0, 0.2], got {self.margin_frac!r}")


def _ink_height(font, ch: str) -> int:
    """Rows of the glyph with at least half coverage (what a viewer sees as the glyph's height)."""
    mask = font.getmask(ch)
    w, h = mask.size
    if w == 0 or h == 0:
        return 0
    rows = np.flatnonzero(np.asarray(mask, dtype=np.uint8).reshape(h, w).max(axis=1) >= 128)
    return 0 if rows.size == 0 else int(rows[-1] - rows[0] + 1)


def _tall_chars(text: str) -> str:
    tall = "".join(ch for ch in text if unicodedata.category(ch) in _TALL_CATEGORIES)
    return tall or "".join(ch for ch in text if not ch.isspace())


class ImageLabel:
    """A label prepared for one frame size: an RGBA patch and its position, applied to many frames cheaply.

    Attributes: ``x``, ``y`` (top-left of the patch), ``patch`` ([h, w, 4] uint8), ``text_height_px`` (ink
    height of the shortest tall glyph), ``required_px`` (the 5% floor), ``font_path``, ``font_size``.
    """

    def __init__(self, width: int, height: int, style: ImageLabelStyle | None = None, **kwargs) -> None:
        from PIL import Image, ImageDraw

        if style is not None and kwargs:
            raise TypeError("pass either style= or style keyword arguments, not both")
        if style is not None and not isinstance(style, ImageLabelStyle):
            raise TypeError(f"style must be an ImageLabelStyle, got {type(style).__name__}")
        style = style or ImageLabelStyle(**kwargs)
        if not (
            isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer)) and width > 0 and height > 0
        ):
            raise LabelError(f"frame size must be positive integers, got {width!r}x{height!r}")
        self.style = style
        self.width, self.height = int(width), int(height)
        short = min(self.width, self.height)
        self.required_px = max(math.ceil(style.height_frac * short - 1e-9), int(style.min_height_px))
        self.font_path = find_font(style.text, style.font)
        tall = _tall_chars(style.text)

        def min_ink(size: int) -> int:
            f = load_font(self.font_path, size)
            return min(_ink_height(f, ch) for ch in tall)

        # one pixel of headroom: a glyph rendered inside the line can land one row shorter than rendered alone
        target = self.required_px + 1
        probe = 200
        ratio = max(min_ink(probe), 1) / probe
        size = max(4, math.floor(target / ratio))
        while min_ink(size) < target:
            size += 1
        while size > 4 and min_ink(size - 1) >= target:
            size -= 1
        self.font_size = size
        font = load_font(self.font_path, size)
        self.text_height_px = min_ink(size)

        stroke = max(1, round(self.required_px * 0.1)) if style.backdrop == "outline" else 0
        pad = max(2, round(self.required_px * 0.3)) if style.backdrop == "box" else stroke + 1
        left, top, right, bottom = font.getbbox(style.text, stroke_width=stroke)
        pw, ph = (right - left) + 2 * pad, (bottom - top) + 2 * pad
        margin = round(style.margin_frac * short)
        if pw + 2 * margin > self.width or ph + 2 * margin > self.height:
            margin = 0
        if pw > self.width or ph > self.height:
            raise LabelError(
                f"a {self.width}x{self.height} picture is too small for the label {style.text!r} at "
                f"{self.required_px} px text height (needs {pw}x{ph} px); use a shorter wording"
            )
        img = Image.new("RGBA", (pw, ph), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        if style.backdrop == "box":
            draw.rectangle([0, 0, pw - 1, ph - 1], fill=(*style.box_color, round(255 * style.box_alpha)))
        draw.text(
            (pad - left, pad - top),
            style.text,
            font=font,
            fill=(*style.text_color, 255),
            stroke_width=stroke,
            stroke_fill=(*style.box_color, 255),
        )
        self.patch = np.asarray(img, dtype=np.uint8)
        pos = style.position
        if "left" in pos:
            x = margin
        elif "right" in pos:
            x = self.width - pw - margin
        else:
            x = (self.width - pw) // 2
        if "top" in pos:
            y = margin
        elif "bottom" in pos:
            y = self.height - ph - margin
        else:
            y = (self.height - ph) // 2
        self.x, self.y = int(x), int(y)
        self._alpha = self.patch[..., 3:4].astype(np.float32) / 255.0
        self._rgb = self.patch[..., :3].astype(np.float32)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the patch in frame coordinates, x1/y1 exclusive."""
        return self.x, self.y, self.x + self.patch.shape[1], self.y + self.patch.shape[0]

    def apply(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Composite the label onto ``frame`` ([H, W], [H, W, 3] or [H, W, 4]; uint8, or float in [0, 1]).

        Returns a new array of the same shape and dtype unless ``out`` is given (which may be ``frame``
        itself).
        """
        arr = np.asarray(frame)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise LabelError(f"frame must have shape [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}")
        if arr.shape[:2] != (self.height, self.width):
            raise LabelError(f"frame is {arr.shape[1]}x{arr.shape[0]}, label prepared for {self.width}x{self.height}")
        if arr.dtype == np.uint8:
            scale = 1.0
        elif arr.dtype in (np.float32, np.float64):
            scale = 1.0 / 255.0
        else:
            raise LabelError(f"frame dtype must be uint8, float32 or float64, got {arr.dtype}")
        res = out if out is not None else arr.copy()
        x0, y0, x1, y1 = self.box
        region = res[y0:y1, x0:x1]
        a = self._alpha
        if region.ndim == 2 or region.shape[2] == 1:
            luma = (self._rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None] * scale
            reg = region.reshape(region.shape[0], region.shape[1], 1).astype(np.float32)
            new = reg * (1 - a) + luma * a
            new = new.reshape(region.shape)
        else:
            reg = region[..., :3].astype(np.float32)
            new3 = reg * (1 - a) + self._rgb * scale * a
            new = region.astype(np.float32).copy()
            new[..., :3] = new3
            if region.shape[2] == 4:  # label is opaque where drawn: raise alpha to at least the label's alpha
                amax = 255.0 * scale
                new[..., 3] = np.maximum(region[..., 3].astype(np.float32), a[..., 0] * amax)
        if arr.dtype == np.uint8:
            region[...] = np.clip(np.rint(new), 0, 255).astype(np.uint8)
        else:
            region[...] = new.astype(arr.dtype)
        return res


def render_image_label(image, text: str = DEFAULT_WORDING, **style_kwargs):
    """Burn an explicit label into ``image`` (PIL.Image or numpy array); returns the same kind of object.

    Keyword arguments are :class:`ImageLabelStyle` fields (``position``, ``height_frac``, ``style``, ``font``,
    ...).
    """
    style = ImageLabelStyle(text=text, **style_kwargs)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        mode = image.mode
        if mode not in ("RGB", "RGBA", "L"):
            conv = image.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
        else:
            conv = image
        arr = np.asarray(conv)
        lab = ImageLabel(arr.shape[1], arr.shape[0], style)
        return Image.fromarray(lab.apply(arr), mode=conv.mode)
    arr = np.asarray(image)
    if arr.ndim < 2:
        raise LabelError(f"image must be a PIL image or an [H, W(, C)] array, got shape {arr.shape}")
    return ImageLabel(arr.shape[1], arr.shape[0], style).apply(arr)


class VideoLabeler:
    """Labels the opening frames of a video: every frame whose presentation time is below ``start_s +
    duration_s``.

    With a constant frame rate that is ``ceil(duration_s * fps)`` frames, which stay on screen for at least
    ``duration_s`` at normal playback speed (GB 45438 5.4). Pass ``time_s`` (the frame's pts in seconds) for
    variable frame rate input, or ``index`` for constant frame rate.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        duration_s: float = 2.0,
        start_s: float = 0.0,
        style: ImageLabelStyle | None = None,
        **style_kwargs,
    ) -> None:
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise LabelError(f"fps must be a positive number, got {fps!r}")
        if not (isinstance(duration_s, (int, float)) and duration_s >= 2.0):
            raise LabelError(f"duration_s must be >= 2.0 s (GB 45438 5.4), got {duration_s!r}")
        if start_s < 0:
            raise LabelError(f"start_s must be >= 0, got {start_s!r}")
        self.fps, self.duration_s, self.start_s = float(fps), float(duration_s), float(start_s)
        self.label = ImageLabel(width, height, style or ImageLabelStyle(**style_kwargs))

    @property
    def frames_due(self) -> int:
        """Number of constant-rate frames that carry the label."""
        return math.ceil(self.duration_s * self.fps - 1e-9)

    def due(self, index: int | None = None, time_s: float | None = None) -> bool:
        if (index is None) == (time_s is None):
            raise TypeError("pass exactly one of index= or time_s=")
        t = index / self.fps if time_s is None else float(time_s)
        return self.start_s - 1e-9 <= t < self.start_s + self.duration_s - 1e-9

    def __call__(self, frame: np.ndarray, index: int | None = None, time_s: float | None = None) -> np.ndarray:
        """Return ``frame`` labeled if it is due, else ``frame`` itself (not copied)."""
        return self.label.apply(frame) if self.due(index=index, time_s=time_s) else frame


def label_video_frames(frames, fps: float, duration_s: float = 2.0, **style_kwargs):
    """Label the opening ``duration_s`` seconds of a constant-rate frame sequence.

    ``frames``: an array [T, H, W(, C)] (a labeled copy is returned) or an iterable of frames (a generator of
    labeled frames is returned).
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise LabelError(f"frames must have shape [T, H, W] or [T, H, W, C], got {frames.shape}")
        lab = VideoLabeler(frames.shape[2], frames.shape[1], fps, duration_s, **style_kwargs)
        out = frames.copy()
        for i in range(min(lab.frames_due, len(out))):
            lab.label.apply(out[i], out=out[i])
        return out

    def gen():
        lab = None
        for i, fr in enumerate(frames):
            arr = np.asarray(fr)
            if lab is None:
                lab = VideoLabeler(arr.shape[1], arr.shape[0], fps, duration_s, **style_kwargs)
            yield lab(arr, index=i)

    return gen()
