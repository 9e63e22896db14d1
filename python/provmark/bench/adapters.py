"""Watermarking methods behind one interface, so the benchmark can treat provmark and its peers alike.

An adapter has ``name``, ``modality`` ("image", "audio" or "video"), ``payload_bits`` and two methods:

- ``embed(media, bits) -> media``: mark ``media`` (see :mod:`provmark.bench.attacks` for the media types:
  images are ``uint8`` RGB ``[H, W, 3]``, audio an :class:`AudioClip`, video a :class:`VideoClip`) with
  ``bits`` (``uint8`` 0/1 array of length ``payload_bits``);
- ``detect(media) -> Result``: the bits read (or None), a score where higher means "marked" (or None when
  the method has no statistic of its own: the runner then uses the number of bits that agree with the
  expected payload, the usual rule for such methods), the method's p-value and its own decision if any.

``available()`` (a classmethod) returns ``(True, "")`` or ``(False, reason)``; peers are optional extras and
never imported at module load. Each adapter instance derives its key from the ``seed`` it is built with.

Third-party adapters: a class with the same attributes, registered under the entry-point group
``provmark.bench.adapters`` (``name = "package.module:Class"``) or passed as ``--adapter module:Class``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

from .attacks import AudioClip, VideoClip

ENTRY_POINT_GROUP = "provmark.bench.adapters"


@dataclass(frozen=True)
class Result:
    """What a detector reported for one item."""

    bits: np.ndarray | None  # uint8 0/1 of length payload_bits, or None when nothing was read
    score: float | None = None  # higher = stronger evidence of a mark; None: the runner scores bit agreement
    p_value: float | None = None  # the method's own p-value, when it gives one
    found: bool | None = None  # the method's own decision, when it makes one


class Adapter:
    """Base class (optional: any object with these attributes works)."""

    name: str = ""
    modality: str = "image"
    payload_bits: int = 32
    description: str = ""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def warmup(self) -> None:
        """Import what the method needs, so that one-off start-up cost is not timed as embedding."""

    def embed(self, media, bits: np.ndarray):
        raise NotImplementedError

    def detect(self, media) -> Result:
        raise NotImplementedError

    def _check_bits(self, bits) -> np.ndarray:
        b = np.asarray(bits)
        if b.shape != (self.payload_bits,) or not np.all((b == 0) | (b == 1)):
            raise ValueError(f"{self.name}: bits must be {self.payload_bits} values of 0/1, got shape {b.shape}")
        return b.astype(np.uint8)


def _seed_bytes(tag: str, seed: int) -> bytes:
    return hashlib.sha256(f"provmark-bench:{tag}:{int(seed)}".encode()).digest()


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def _bytes_to_bits(data: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8))[:n].astype(np.uint8)


def _rgb_u8(img) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("image adapters take uint8 RGB arrays of shape [H, W, 3]")
    return img


# ------------------------------------------------------------------------------------------- provmark


def _provmark_module(name: str):
    return importlib.import_module(f"provmark.{name}")


class _ProvmarkBase(Adapter):
    payload_bits = 64
    _module = ""

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            m = _provmark_module(cls._module)
        except Exception as e:
            return False, f"provmark.{cls._module} not importable: {type(e).__name__}: {e}"
        if not (callable(getattr(m, "embed", None)) and callable(getattr(m, "detect", None))):
            return False, f"provmark.{cls._module} has no embed/detect yet"
        return True, ""

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        import provmark

        self._key = provmark.Key.from_bytes(_seed_bytes("provmark", seed))
        self._mod = _provmark_module(self._module)

    def warmup(self) -> None:
        _provmark_module(self._module)

    def _payload(self, bits: np.ndarray):
        import provmark

        return provmark.Payload(_bits_to_bytes(self._check_bits(bits)), bits=self.payload_bits)

    def _result(self, det) -> Result:
        bits = None if det.payload is None else _bytes_to_bits(det.payload, self.payload_bits)
        return Result(bits=bits, score=float(det.score), p_value=float(det.p_value), found=bool(det.found))


class ProvmarkImage(_ProvmarkBase):
    name = "provmark"
    modality = "image"
    description = "provmark image engine (tiled spread spectrum, sync + ECC)"
    _module = "image"

    def embed(self, media, bits):
        return self._mod.embed(_rgb_u8(media), self._payload(bits), self._key)

    def detect(self, media) -> Result:
        return self._result(self._mod.detect(_rgb_u8(media), self._key))


class ProvmarkAudio(_ProvmarkBase):
    name = "provmark"
    modality = "audio"
    description = "provmark audio engine (keyed band-energy quantisation (STDM) in 20 ms frames, sync + ECC)"
    _module = "audio"

    def embed(self, media, bits):
        x, sr = media
        y = self._mod.embed(np.ascontiguousarray(np.asarray(x).T), int(sr), self._payload(bits), self._key)
        return AudioClip(np.ascontiguousarray(np.asarray(y).T), int(sr))

    def detect(self, media) -> Result:
        x, sr = media
        return self._result(self._mod.detect(np.ascontiguousarray(np.asarray(x).T), int(sr), self._key))


class ProvmarkVideo(_ProvmarkBase):
    name = "provmark"
    modality = "video"
    description = "provmark video engine (image mark on every frame's luma, frames averaged to detect)"
    _module = "video"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            m = _provmark_module("video")
        except Exception as e:
            return False, f"provmark.video not importable: {type(e).__name__}: {e}"
        if not (hasattr(m, "FrameEmbedder") and callable(getattr(m, "detect_frames", None))):
            return False, "provmark.video has no FrameEmbedder/detect_frames yet"
        return True, ""

    def embed(self, media, bits):
        frames, fps = media
        emb = self._mod.FrameEmbedder(frames.shape[2], frames.shape[1], self._payload(bits), self._key)
        return VideoClip(np.stack([np.asarray(emb.push(f)) for f in frames]), fps)

    def detect(self, media) -> Result:
        frames, fps = media
        return self._result(self._mod.detect_frames(list(frames), self._key, fps=float(fps)))


# ------------------------------------------------------------------------------------- invisible-watermark


class _InvisibleWatermark(Adapter):
    modality = "image"
    payload_bits = 32
    _method = ""

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            importlib.import_module("imwatermark")
        except Exception as e:
            return (
                False,
                f"invisible-watermark not installed ({type(e).__name__}: {e}); pip install invisible-watermark",
            )
        return True, ""

    def warmup(self) -> None:
        import imwatermark  # noqa: F401

    def embed(self, media, bits):
        from imwatermark import WatermarkEncoder

        img = _rgb_u8(media)
        enc = WatermarkEncoder()
        enc.set_watermark("bits", [int(b) for b in self._check_bits(bits)])
        bgr = np.ascontiguousarray(img[:, :, ::-1])
        out = enc.encode(bgr, self._method)
        return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)[:, :, ::-1])

    def detect(self, media) -> Result:
        from imwatermark import WatermarkDecoder

        img = _rgb_u8(media)
        dec = WatermarkDecoder("bits", self.payload_bits)
        bits = dec.decode(np.ascontiguousarray(img[:, :, ::-1]), self._method)
        return Result(bits=np.asarray(bits, dtype=np.uint8)[: self.payload_bits])


class InvisibleWatermarkDwtDct(_InvisibleWatermark):
    name = "iw-dwtDct"
    description = "invisible-watermark 'dwtDct' (DWT + DCT, the Stable Diffusion default), 32 bits"
    _method = "dwtDct"


class InvisibleWatermarkDwtDctSvd(_InvisibleWatermark):
    name = "iw-dwtDctSvd"
    description = "invisible-watermark 'dwtDctSvd' (DWT + DCT + SVD), 32 bits"
    _method = "dwtDctSvd"


# ------------------------------------------------------------------------------------- blind-watermark


def _import_blind_watermark():
    """Import blind_watermark without letting it call multiprocessing.set_start_method('fork').

    Its ``pool`` module does that at import time, which raises in a process whose start method is already
    set (our spawn workers) and silently changes it in any other process.
    """
    import sys

    if "blind_watermark" in sys.modules:
        return sys.modules["blind_watermark"]
    import multiprocessing

    orig = multiprocessing.set_start_method
    multiprocessing.set_start_method = lambda *a, **k: None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module("blind_watermark")
    finally:
        multiprocessing.set_start_method = orig


class BlindWatermark(Adapter):
    name = "blind-watermark"
    modality = "image"
    payload_bits = 64
    description = "blind-watermark (DWT-DCT-SVD, k-means bit decision), 64 bits"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            _import_blind_watermark()
        except Exception as e:
            return (
                False,
                f"blind-watermark not installed ({type(e).__name__}: {e}); pip install blind-watermark",
            )
        return True, ""

    def warmup(self) -> None:
        _import_blind_watermark()

    def _wm(self):
        blind_watermark = _import_blind_watermark()
        pw = int.from_bytes(_seed_bytes("blind", self.seed)[:3], "big")
        with contextlib.redirect_stdout(io.StringIO()):  # it greets on stdout once per process
            blind_watermark.bw_notes.close()
            return blind_watermark.WaterMark(password_wm=pw, password_img=pw)

    def embed(self, media, bits):
        img = _rgb_u8(media)
        wm = self._wm()
        with contextlib.redirect_stdout(io.StringIO()):
            wm.read_img(img=np.ascontiguousarray(img[:, :, ::-1]).astype(np.float32))
            wm.read_wm([bool(b) for b in self._check_bits(bits)], mode="bit")
            out = wm.embed()
        return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)[:, :, ::-1])

    def detect(self, media) -> Result:
        img = _rgb_u8(media)
        wm = self._wm()
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # k-means on degenerate input warns; the bits are still read
            soft = wm.extract(
                embed_img=np.ascontiguousarray(img[:, :, ::-1]).astype(np.float32),
                wm_shape=self.payload_bits,
                mode="bit",
            )
        return Result(bits=(np.asarray(soft, dtype=np.float64) > 0.5).astype(np.uint8))


# ------------------------------------------------------------------------------------------ LSB baseline


class LsbBaseline(Adapter):
    """Textbook least-significant-bit watermark: a fragile reference point with no dependencies.

    Bit ``i``, XORed with a keyed random mask, is written into the LSB of the green channel of every pixel
    whose keyed label is ``i`` (the mask keeps the LSB bias of dark or flat regions from voting); the
    detector takes a majority vote per bit and reports the vote margin as its score. The video and audio
    variants do the same on every frame, and on the 16-bit samples.
    """

    name = "lsb-baseline"
    modality = "image"
    payload_bits = 64
    description = "LSB of the green channel, keyed pixel-to-bit map, majority vote (fragile reference)"

    def _labels(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int.from_bytes(_seed_bytes("lsb", self.seed)[:8], "big"))
        lab = rng.integers(0, self.payload_bits, size=shape)
        return lab, rng.integers(0, 2, size=shape).astype(np.uint8)

    def _write(self, plane: np.ndarray, bits) -> np.ndarray:
        b = self._check_bits(bits)
        lab, mask = self._labels(plane.shape)
        return (plane & ~plane.dtype.type(1)) | (b[lab] ^ mask).astype(plane.dtype)

    def _vote(self, planes: list[np.ndarray]) -> Result:
        ones = np.zeros(self.payload_bits)
        total = np.zeros(self.payload_bits)
        for plane in planes:
            lab, mask = self._labels(plane.shape)
            lsb = ((plane & 1).astype(np.uint8) ^ mask).ravel().astype(np.float64)
            ones += np.bincount(lab.ravel(), weights=lsb, minlength=self.payload_bits)
            total += np.bincount(lab.ravel(), minlength=self.payload_bits)
        frac = ones / np.maximum(total, 1)
        bits = (frac > 0.5).astype(np.uint8)
        # mean distance of the per-bit vote from a coin flip, in units of its standard error
        z = float(np.mean(np.abs(frac - 0.5) * 2 * np.sqrt(np.maximum(total, 1))))
        return Result(bits=bits, score=z)

    def embed(self, media, bits):
        img = _rgb_u8(media)
        out = img.copy()
        out[:, :, 1] = self._write(img[:, :, 1], bits)
        return out

    def detect(self, media) -> Result:
        return self._vote([_rgb_u8(media)[:, :, 1]])


class LsbBaselineVideo(LsbBaseline):
    modality = "video"
    description = "LSB of the green channel of every frame, votes pooled over frames (fragile reference)"

    def embed(self, media, bits):
        frames, fps = media
        out = frames.copy()
        for f in out:
            f[:, :, 1] = self._write(f[:, :, 1], bits)
        return VideoClip(out, fps)

    def detect(self, media) -> Result:
        frames, _ = media
        return self._vote([f[:, :, 1] for f in frames])


class LsbBaselineAudio(LsbBaseline):
    modality = "audio"
    description = "LSB of 16-bit samples, keyed sample-to-bit map, majority vote (fragile reference)"

    @staticmethod
    def _pcm(x: np.ndarray) -> np.ndarray:
        if x.dtype == np.int16:
            return x
        return np.clip(np.rint(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)

    def embed(self, media, bits):
        x, sr = media
        x = np.asarray(x)
        y = self._write(self._pcm(x), bits)
        return AudioClip(y if x.dtype == np.int16 else (y / 32768.0).astype(x.dtype), int(sr))

    def detect(self, media) -> Result:
        x, _ = media
        return self._vote([self._pcm(np.asarray(x))])


# ------------------------------------------------------------------------------------------ audiowmark


_AUDIOWMARK_LINE = re.compile(r"^pattern\s+(\S+)\s+([0-9a-fA-F]{32})\s+([-0-9.]+)\s+([-0-9.]+)")


def parse_audiowmark_get(text: str) -> tuple[str, float] | None:
    """Best ``(hex payload, quality)`` from ``audiowmark get`` output (prefers the ``all`` line), or None."""
    best = None
    for line in text.splitlines():
        m = _AUDIOWMARK_LINE.match(line.strip())
        if not m:
            continue
        pos, hexs, quality = m.group(1), m.group(2).lower(), float(m.group(3))
        if pos == "all":
            return hexs, quality
        if best is None or quality > best[1]:
            best = (hexs, quality)
    return best


class Audiowmark(Adapter):
    name = "audiowmark"
    modality = "audio"
    payload_bits = 128
    description = "audiowmark command-line tool (Stefan Westerfeld), 128 bits, its default key"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if shutil.which("audiowmark") is None:
            return False, "the audiowmark command is not on PATH"
        return True, ""

    def _run(self, args: list[str]) -> str:
        r = subprocess.run(["audiowmark", *args], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"audiowmark {args[0]} failed: {r.stderr.strip()[-300:]}")
        return r.stdout

    def embed(self, media, bits):
        from .attacks.audio import _wav_bytes, av_decode

        x, sr = media
        x = np.asarray(x)
        f = x.astype(np.float64) if x.ndim == 2 else x.astype(np.float64)[:, None]
        with tempfile.TemporaryDirectory(prefix="provmark-awm-") as tmp:
            src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
            with open(src, "wb") as fh:
                fh.write(_wav_bytes(f, int(sr)))
            self._run(["add", src, dst, _bits_to_bytes(self._check_bits(bits)).hex()])
            with open(dst, "rb") as fh:
                y = av_decode(fh.read(), int(sr), f.shape[1])
        y = y[: f.shape[0]]
        y = y if x.ndim == 2 else y[:, 0]
        return AudioClip(y.astype(x.dtype) if x.dtype != np.int16 else np.rint(y * 32767).astype(np.int16), int(sr))

    def detect(self, media) -> Result:
        from .attacks.audio import _wav_bytes

        x, sr = media
        x = np.asarray(x)
        f = x.astype(np.float64) / (32768.0 if x.dtype == np.int16 else 1.0)
        f = f if f.ndim == 2 else f[:, None]
        with tempfile.TemporaryDirectory(prefix="provmark-awm-") as tmp:
            src = os.path.join(tmp, "in.wav")
            with open(src, "wb") as fh:
                fh.write(_wav_bytes(f, int(sr)))
            out = self._run(["get", src])
        best = parse_audiowmark_get(out)
        if best is None:
            return Result(bits=None, score=0.0, found=False)
        return Result(bits=_bytes_to_bits(bytes.fromhex(best[0]), self.payload_bits), score=best[1], found=True)


# ------------------------------------------------------------------------------------------ registry

BUILTIN: list[type] = [
    ProvmarkImage,
    ProvmarkAudio,
    ProvmarkVideo,
    InvisibleWatermarkDwtDct,
    InvisibleWatermarkDwtDctSvd,
    BlindWatermark,
    Audiowmark,
    LsbBaseline,
    LsbBaselineVideo,
    LsbBaselineAudio,
]


def _validate_class(cls, origin: str):
    for attr in ("name", "modality", "payload_bits", "embed", "detect"):
        if not hasattr(cls, attr):
            raise TypeError(f"adapter {origin} lacks attribute {attr!r}")
    if cls.modality not in ("image", "audio", "video"):
        raise TypeError(f"adapter {origin}: modality must be image, audio or video, got {cls.modality!r}")
    if not isinstance(cls.name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", cls.name):
        raise TypeError(f"adapter {origin}: name must be a non-empty word ([A-Za-z0-9_.+-]), got {cls.name!r}")
    if isinstance(cls.payload_bits, bool) or not isinstance(cls.payload_bits, int) or not 1 <= cls.payload_bits <= 4096:
        raise TypeError(f"adapter {origin}: payload_bits must be an int in 1..4096")
    return cls


def load_adapter(spec: str):
    """Import ``module:Class`` and check it looks like an adapter."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"adapter must be given as module:Class, got {spec!r}")
    mod, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load adapter {spec!r}: {e}") from e
    return _validate_class(obj, spec)


def entry_point_adapters() -> tuple[list[type], list[str]]:
    """Adapters registered by installed packages, and the warnings for those that failed to load."""
    from importlib import metadata

    found, problems = [], []
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # Python < 3.10 API
        eps = metadata.entry_points().get(ENTRY_POINT_GROUP, [])
    for ep in eps:
        try:
            found.append(_validate_class(ep.load(), f"entry point {ep.name}"))
        except Exception as e:
            problems.append(f"entry point {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}")
    return found, problems


def all_adapters(extra: list[str] | None = None) -> tuple[dict[tuple[str, str], type], list[str]]:
    """All known adapter classes keyed by ``(name, modality)``: built-ins, entry points, then ``extra``."""
    table: dict[tuple[str, str], type] = {}
    eps, problems = entry_point_adapters()
    for cls in [*BUILTIN, *eps, *[load_adapter(s) for s in (extra or [])]]:
        table[(cls.name, cls.modality)] = cls
    return table, problems


def availability(table: dict[tuple[str, str], type]) -> dict[tuple[str, str], tuple[bool, str]]:
    out = {}
    for k, cls in table.items():
        try:
            out[k] = tuple(cls.available())  # type: ignore[assignment]
        except Exception as e:
            out[k] = (False, f"available() raised {type(e).__name__}: {e}")
    return out
