"""Benchmark suites: which items, limits and attacks per modality. Built-ins are ``quick`` and ``full``;
any TOML file with the same layout works (``provmark bench --suite my.toml``)::

    [suite]
    name = "mine"
    seed = 0            # item selection, payloads, keys and attack randomness all derive from it
    fpr = 0.01          # false-positive rate at which detection rates are reported

    [image]
    items = 6           # how many items of the corpus (fixed-seed selection); omit for all
    max_side = 1024     # downscale larger images on load
    attacks = ["identity()", "jpeg(q=50)", "crop(area=0.5) | jpeg(q=80)"]

    [audio]
    items = 3
    max_seconds = 12.0
    min_seconds = 3.0
    attacks = ["mp3(kbps=64)"]

    [video]
    items = 1
    max_frames = 48
    max_side = 640
    attacks = ["h264(crf=28)"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import attacks as _attacks
from .corpus import Limits

try:
    import tomllib as _toml
except ImportError:  # Python 3.10
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ImportError:
        _toml = None  # type: ignore[assignment]

QUICK = """
[suite]
name = "quick"
seed = 0
fpr = 0.05

[image]
items = 4
max_side = 512
attacks = [
  "identity()", "jpeg(q=50)", "jpeg(q=30)", "webp(q=75)", "resize(scale=0.5)", "crop(area=0.5)",
  "rotate(deg=5)", "flip()", "blur(radius=2)", "noise(sigma=0.05)", "brightness(factor=1.5)",
  "contrast(factor=0.5)", "screenshot()", "omniseal()",
]

[audio]
items = 2
max_seconds = 10.0
min_seconds = 3.0
attacks = [
  "identity()", "mp3(kbps=64)", "aac(kbps=64)", "opus(kbps=32)", "resample(rate=16000)",
  "white_noise(snr=20)", "lowpass(hz=4000)", "volume(gain=0.5)", "time_crop(seconds=5)", "speed(factor=1.05)",
]

[video]
items = 1
max_frames = 24
max_side = 640
attacks = ["identity()", "h264(crf=28)", "fps(target=12)", "frame_drop(frac=0.2)", "h264_crop_brightness()"]
"""

FULL = """
[suite]
name = "full"
seed = 0
fpr = 0.01

[image]
items = 16
max_side = 1024
attacks = [
  "identity()",
  "jpeg(q=10)", "jpeg(q=20)", "jpeg(q=30)", "jpeg(q=50)", "jpeg(q=70)", "jpeg(q=90)", "jpeg(q=95)",
  "jpeg(q=30,subsampling='444')", "jpeg(q=50,subsampling='444')", "jpeg(q=75,subsampling='444')",
  "webp(q=30)", "webp(q=50)", "webp(q=75)", "webp(q=90)",
  "avif(q=30)", "avif(q=50)", "avif(q=75)",
  "resize(scale=0.25)", "resize(scale=0.5)", "resize(scale=0.75)", "resize(scale=1.5)", "resize(scale=2.0)",
  "resize(scale=0.5,back=True)", "resize(scale=0.25,back=True)", "resize_to(short=256)",
  "crop(area=0.9)", "crop(area=0.75)", "crop(area=0.5)", "crop(area=0.25)", "crop(area=0.1)",
  "rotate(deg=1)", "rotate(deg=2)", "rotate(deg=5)", "rotate(deg=10)", "rotate(deg=30)",
  "perspective(strength=0.05)", "perspective(strength=0.1)", "perspective(strength=0.2)",
  "flip()", "flip(axis='v')",
  "blur(radius=1)", "blur(radius=2)", "blur(radius=4)", "median(size=3)", "median(size=5)", "median(size=7)",
  "noise(sigma=0.02)", "noise(sigma=0.05)", "noise(sigma=0.1)",
  "brightness(factor=0.5)", "brightness(factor=0.75)", "brightness(factor=1.25)", "brightness(factor=1.5)",
  "brightness(factor=2.0)",
  "contrast(factor=0.5)", "contrast(factor=0.75)", "contrast(factor=1.5)", "contrast(factor=2.0)",
  "gamma(gamma=0.5)", "gamma(gamma=0.75)", "gamma(gamma=1.5)", "gamma(gamma=2.0)",
  "saturation(factor=0.0)", "saturation(factor=0.5)", "saturation(factor=2.0)",
  "hue(shift=-0.25)", "hue(shift=-0.1)", "hue(shift=0.1)", "hue(shift=0.25)",
  "overlay_text(size=0.1)", "overlay_logo(size=0.2)", "overlay_logo(size=0.4)",
  "collage(area=0.5)", "collage(area=0.25)",
  "social()", "screenshot()", "omniseal()",
]

[audio]
items = 12
max_seconds = 30.0
min_seconds = 5.0
attacks = [
  "identity()",
  "mp3(kbps=32)", "mp3(kbps=64)", "mp3(kbps=128)", "aac(kbps=32)", "aac(kbps=64)", "aac(kbps=128)",
  "opus(kbps=16)", "opus(kbps=32)", "opus(kbps=64)", "vorbis(kbps=64)", "vorbis(kbps=128)",
  "resample(rate=8000)", "resample(rate=16000)", "resample(rate=22050)", "resample(rate=16000,back=True)",
  "lowpass(hz=2000)", "lowpass(hz=4000)", "lowpass(hz=8000)", "highpass(hz=100)", "highpass(hz=500)",
  "bandpass(low=300,high=3400)",
  "white_noise(snr=10)", "white_noise(snr=20)", "white_noise(snr=30)",
  "pink_noise(snr=10)", "pink_noise(snr=20)", "pink_noise(snr=30)",
  "volume(gain=0.25)", "volume(gain=0.5)", "volume(gain=2.0)", "clip(level=0.5)", "clip(level=0.8)",
  "echo(delay_ms=50.0,decay=0.3)", "echo(delay_ms=100.0,decay=0.5)", "echo(delay_ms=250.0,decay=0.5)",
  "time_crop(seconds=5)", "time_crop(seconds=10)", "cut_out(seconds=0.5,count=3)", "splice(seconds=2)",
  "speed(factor=0.95)", "speed(factor=0.98)", "speed(factor=1.02)", "speed(factor=1.05)",
  "speed(factor=0.95,pitch=False)", "speed(factor=1.05,pitch=False)",
  "invert()", "quantize(bits=8)", "quantize(bits=6)",
]

[video]
items = 4
max_frames = 96
max_side = 1280
attacks = [
  "identity()",
  "h264(crf=23)", "h264(crf=28)", "h264(crf=35)", "h264(crf=40)", "hevc(crf=28)", "hevc(crf=35)",
  "vp9(crf=35)", "vp9(crf=45)", "av1(crf=35)", "av1(crf=45)",
  "downscale(height=480)", "downscale(height=240)", "downscale(height=480) | h264(crf=28)",
  "fps(target=15)", "fps(target=12)", "temporal_crop(seconds=3)", "temporal_crop(seconds=1)",
  "frame_drop(frac=0.2)", "frame_drop(frac=0.5)", "frame_dup(frac=0.2)", "frame_swap(frac=0.2)",
  "crop(area=0.8)", "crop(area=0.5)", "brightness(factor=0.5)", "brightness(factor=1.5)",
  "contrast(factor=0.5)", "flip()", "overlay_logo(size=0.2)",
  "h264_crop_brightness()",
]
"""

BUILTIN = {"quick": QUICK, "full": FULL}


@dataclass
class ModalitySpec:
    items: int | None
    limits: Limits
    attacks: list[Any]  # Attack objects


@dataclass
class Suite:
    name: str
    seed: int = 0
    fpr: float = 0.01
    modalities: dict[str, ModalitySpec] = field(default_factory=dict)
    source: str = ""


def _parse(data: dict[str, Any], origin: str) -> Suite:
    unknown = set(data) - {"suite", "image", "audio", "video"}
    if unknown:
        raise ValueError(f"suite {origin}: unknown tables {sorted(unknown)}")
    head = data.get("suite", {})
    name = str(head.get("name", os.path.splitext(os.path.basename(origin))[0]))
    seed = head.get("seed", 0)
    fpr = head.get("fpr", 0.01)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"suite {origin}: seed must be a non-negative int")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0 < fpr < 1:
        raise ValueError(f"suite {origin}: fpr must be in (0, 1)")
    suite = Suite(name=name, seed=seed, fpr=float(fpr), source=origin)
    for m in ("image", "audio", "video"):
        if m not in data:
            continue
        t = data[m]
        bad = set(t) - {"items", "attacks", "max_side", "max_seconds", "min_seconds", "max_frames"}
        if bad:
            raise ValueError(f"suite {origin}: unknown keys in [{m}]: {sorted(bad)}")
        names = t.get("attacks", [])
        if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
            raise ValueError(f"suite {origin}: [{m}] attacks must be a non-empty list of attack names")
        atk = [_attacks.get(a, m) for a in names]
        seen = set()
        for a in atk:
            if a.name in seen:
                raise ValueError(f"suite {origin}: attack {a.name} listed twice in [{m}]")
            seen.add(a.name)
        items = t.get("items")
        if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 1):
            raise ValueError(f"suite {origin}: [{m}] items must be a positive int")
        limits = Limits(
            max_side=t.get("max_side"),
            max_seconds=t.get("max_seconds"),
            min_seconds=t.get("min_seconds"),
            max_frames=t.get("max_frames"),
        )
        suite.modalities[m] = ModalitySpec(items=items, limits=limits, attacks=atk)
    if not suite.modalities:
        raise ValueError(f"suite {origin}: no [image], [audio] or [video] table")
    return suite


def load_suite(name_or_path: str) -> Suite:
    """``quick``, ``full`` or the path of a TOML file."""
    if _toml is None:
        raise RuntimeError("reading suites needs Python 3.11+ (tomllib) or the tomli package")
    if name_or_path in BUILTIN:
        return _parse(_toml.loads(BUILTIN[name_or_path]), name_or_path)
    if not os.path.isfile(name_or_path):
        raise ValueError(f"suite must be one of {sorted(BUILTIN)} or an existing .toml file, got {name_or_path!r}")
    with open(name_or_path, "rb") as fh:
        try:
            data = _toml.load(fh)
        except Exception as e:
            raise ValueError(f"suite {name_or_path}: invalid TOML: {e}") from e
    return _parse(data, name_or_path)
