"""Attack base class, registry and the name parser shared by all modalities.

An attack is a small callable object with a stable, human-readable name such as ``jpeg(q=50)``.
Calling it with a medium and a seed returns the attacked medium; the same medium, parameters and seed
always give the same output. Names round-trip: ``get(attack.name, modality)`` rebuilds an equal attack.

Media representations (numpy only, so anyone can use an attack without provmark's core):

- image: ``ndarray`` of shape ``[H, W]`` or ``[H, W, C]`` (C = 1, 3 or 4), dtype ``uint8`` (0..255) or float
  (0..1). The output keeps dtype, value range and channel count; the spatial size changes only where the
  attack says so (resize, crop, rotate with crop, collage).
- audio: :class:`AudioClip` ``(samples, sample_rate)``; samples ``[N]`` or ``[N, C]``, float (-1..1) or
  ``int16``. Any 2-tuple ``(samples, rate)`` is accepted. Output keeps dtype and channel count.
- video: :class:`VideoClip` ``(frames, fps)``; frames ``[T, H, W, 3]`` ``uint8``.
"""

from __future__ import annotations

import ast
import inspect
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

MODALITIES = ("image", "audio", "video")


class AudioClip(NamedTuple):
    """Audio samples ``[N]`` or ``[N, C]`` with their sample rate in Hz."""

    samples: np.ndarray
    sample_rate: int


class VideoClip(NamedTuple):
    """Video frames ``[T, H, W, 3]`` uint8 with their frame rate."""

    frames: np.ndarray
    fps: float


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ",".join(_format_value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


@dataclass(frozen=True)
class AttackSpec:
    """Registered attack family: its function, modality, parameter defaults and plotting axis."""

    family: str
    modality: str
    fn: Callable[..., Any]
    strength: str | None  # name of the parameter plotted as "attack strength", or None
    doc: str
    available: Callable[[], bool]
    params: tuple[tuple[str, Any], ...]  # (name, default or inspect.Parameter.empty) in signature order


_REGISTRY: dict[str, dict[str, AttackSpec]] = {m: {} for m in MODALITIES}


def register(
    modality: str,
    family: str | None = None,
    *,
    strength: str | None = None,
    available: Callable[[], bool] | None = None,
):
    """Decorator: register ``fn(media, rng, **params)`` as attack family ``family`` of ``modality``."""
    if modality not in MODALITIES:
        raise ValueError(f"register: modality must be one of {MODALITIES}, got {modality!r}")

    def deco(fn):
        fam = family or fn.__name__.lstrip("_")
        sig = inspect.signature(fn)
        ps = list(sig.parameters.values())[2:]  # skip (media, rng)
        params = tuple((p.name, p.default) for p in ps)
        if strength is not None and strength not in dict(params):
            raise ValueError(f"register({fam}): strength parameter {strength!r} is not a parameter")
        doc = inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        _REGISTRY[modality][fam] = AttackSpec(fam, modality, fn, strength, doc, available or (lambda: True), params)
        return fn

    return deco


class Attack:
    """A parameterised, seeded attack. ``attack(media, seed=0)`` returns the attacked medium."""

    def __init__(self, spec: AttackSpec, params: dict[str, Any]):
        known = dict(spec.params)
        for k in params:
            if k not in known:
                raise TypeError(f"attack {spec.family}() got unknown parameter {k!r}; parameters: {list(known)}")
        full: dict[str, Any] = {}
        for k, default in spec.params:
            if k in params:
                full[k] = params[k]
            elif default is inspect.Parameter.empty:
                raise TypeError(f"attack {spec.family}() needs parameter {k!r}")
            else:
                full[k] = default
        self.spec = spec
        self.params = full
        shown = [
            f"{k}={_format_value(full[k])}"
            for k, default in spec.params
            if default is inspect.Parameter.empty or full[k] != default
        ]
        self.name = f"{spec.family}({','.join(shown)})"
        # Parameters are validated at construction (not at first call) by the family's `check` hook.
        check = getattr(spec.fn, "check", None)
        if check is not None:
            accepted = inspect.signature(check).parameters
            check(**{k: v for k, v in full.items() if k in accepted})

    family = property(lambda self: self.spec.family)
    modality = property(lambda self: self.spec.modality)

    @property
    def strength(self) -> float | None:
        """Value of the family's strength parameter (x axis of robustness plots), or None."""
        if self.spec.strength is None:
            return None
        v = self.params[self.spec.strength]
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def available(self) -> bool:
        return bool(self.spec.available())

    def rng(self, seed: int) -> np.random.Generator:
        """The generator this attack uses for ``seed``: keyed by the seed and the attack's stable name."""
        return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(self.name.encode())])

    def __call__(self, media, seed: int = 0):
        if not self.available():
            raise RuntimeError(f"attack {self.name} is not available in this installation")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"{self.name}: seed must be an int, got {type(seed).__name__}")
        return self.spec.fn(media, self.rng(int(seed)), **self.params)

    def __repr__(self) -> str:
        return f"<{self.modality} attack {self.name}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Attack) and (self.modality, self.name) == (other.modality, other.name)

    def __hash__(self) -> int:
        return hash((self.modality, self.name))


class Chain(Attack):
    """Attacks applied left to right; name ``a | b | c``. Each step gets its own derived seed."""

    def __init__(self, steps: Sequence[Attack]):
        if len(steps) < 2:
            raise ValueError("Chain needs at least two attacks")
        mods = {s.modality for s in steps}
        if len(mods) != 1:
            raise ValueError(f"Chain mixes modalities {sorted(mods)}")
        self.steps = list(steps)
        self.name = " | ".join(s.name for s in steps)
        self.params = {}
        self._modality = steps[0].modality

    family = property(lambda self: "chain")
    modality = property(lambda self: self._modality)
    strength = property(lambda self: None)
    spec = property(lambda self: None)

    def available(self) -> bool:
        return all(s.available() for s in self.steps)

    def __call__(self, media, seed: int = 0):
        for i, s in enumerate(self.steps):
            media = s(media, seed=int(seed) * 1000003 + i)
        return media


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.Name):  # bare words are strings: crop(offset=random)
        return node.id
    raise ValueError(f"attack {text!r}: parameter values must be literals, got {ast.dump(node)}")


def _parse_one(text: str, modality: str) -> Attack:
    text = text.strip()
    try:
        tree = ast.parse(text if "(" in text else text + "()", mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"cannot parse attack name {text!r}: {e.msg}") from None
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError(f"attack name {text!r} must look like family(param=value, ...)")
    fam = tree.func.id
    reg = _REGISTRY[modality]
    if fam not in reg:
        raise ValueError(f"unknown {modality} attack {fam!r}; known: {', '.join(sorted(reg))}")
    spec = reg[fam]
    params: dict[str, Any] = {}
    names = [n for n, _ in spec.params]
    if len(tree.args) > len(names):
        raise TypeError(f"attack {text!r}: too many positional parameters")
    for n, a in zip(names, tree.args, strict=False):
        params[n] = _literal(a, text)
    for kw in tree.keywords:
        if kw.arg is None or kw.arg in params:
            raise TypeError(f"attack {text!r}: bad or repeated parameter {kw.arg!r}")
        params[kw.arg] = _literal(kw.value, text)
    return Attack(spec, params)


def _split_top(text: str, sep: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def get(name: str, modality: str = "image") -> Attack:
    """Build an attack from its name, e.g. ``get("jpeg(q=50)")`` or ``get("crop(area=0.5) | jpeg(q=80)")``."""
    if not isinstance(name, str):
        raise TypeError(f"attack name must be a str, got {type(name).__name__}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    parts = [p for p in _split_top(name, "|")]
    if any(not p.strip() for p in parts):
        raise ValueError(f"empty step in attack chain {name!r}")
    if len(parts) == 1:
        return _parse_one(parts[0], modality)
    return Chain([_parse_one(p, modality) for p in parts])


def families(modality: str) -> dict[str, AttackSpec]:
    """Registered attack families of a modality (name -> spec)."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    return dict(_REGISTRY[modality])


# ---------------------------------------------------------------- dtype helpers shared by modalities


def image_to_float(img) -> tuple[np.ndarray, Any]:
    """``img`` as float32 [H, W, C] in 0..1 plus a token to restore its dtype/shape with
    :func:`image_restore`."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must have shape [H, W] or [H, W, C] with C in 1,3,4; got {img.shape}")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ValueError(f"image is too small: {img.shape}")
    if img.dtype == np.uint8:
        f = img.astype(np.float32) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        f = img.astype(np.float32, copy=True)
        if not np.all(np.isfinite(f)):
            raise ValueError("image contains NaN or infinite values")
    else:
        raise TypeError(f"image dtype must be uint8 or float, got {img.dtype}")
    token = (img.dtype, img.ndim)
    if f.ndim == 2:
        f = f[:, :, None]
    return f, token


def image_restore(f: np.ndarray, token) -> np.ndarray:
    dtype, ndim = token
    f = np.clip(f, 0.0, 1.0)
    if ndim == 2:
        f = f[:, :, 0]
    if dtype == np.uint8:
        return np.rint(f * 255.0).astype(np.uint8)
    return f.astype(dtype)


def image_to_uint8(img) -> tuple[np.ndarray, Any]:
    """``img`` as uint8 [H, W, C] plus a restore token (floats are rounded to 8 bits, as any file would)."""
    f, token = image_to_float(img)
    if img.dtype == np.uint8:
        u = img if img.ndim == 3 else img[:, :, None]
        return np.ascontiguousarray(u), token
    return np.rint(np.clip(f, 0, 1) * 255.0).astype(np.uint8), token


def uint8_restore(u: np.ndarray, token) -> np.ndarray:
    dtype, ndim = token
    if u.ndim == 2:
        u = u[:, :, None]
    if ndim == 2:
        u = u[:, :, 0]
    if dtype == np.uint8:
        return np.ascontiguousarray(u)
    return (u.astype(np.float32) / 255.0).astype(dtype)


def audio_in(clip) -> tuple[np.ndarray, int, Any]:
    """Audio as float64 ``[N, C]`` in -1..1, its rate, and a token for :func:`audio_out`."""
    if isinstance(clip, np.ndarray) or not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise TypeError("audio must be an AudioClip or a (samples, sample_rate) tuple")
    x, sr = clip
    if not isinstance(x, np.ndarray):
        raise TypeError(f"audio samples must be a numpy array, got {type(x).__name__}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 1000 <= int(sr) <= 768000:
        raise ValueError(f"sample_rate must be an int in 1000..768000, got {sr!r}")
    if x.ndim not in (1, 2) or x.shape[0] == 0 or (x.ndim == 2 and not 1 <= x.shape[1] <= 16):
        raise ValueError(f"audio samples must have shape [N] or [N, C] with N > 0, C <= 16; got {x.shape}")
    if x.dtype == np.int16:
        f = x.astype(np.float64) / 32768.0
    elif np.issubdtype(x.dtype, np.floating):
        f = x.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise ValueError("audio contains NaN or infinite values")
    else:
        raise TypeError(f"audio dtype must be float or int16, got {x.dtype}")
    token = (x.dtype, x.ndim)
    if f.ndim == 1:
        f = f[:, None]
    return f, int(sr), token


def audio_out(f: np.ndarray, sr: int, token) -> AudioClip:
    dtype, ndim = token
    if f.shape[0] == 0:
        raise ValueError("attack produced empty audio")
    if ndim == 1:
        f = f[:, 0]
    if dtype == np.int16:
        y = np.clip(np.rint(f * 32768.0), -32768, 32767).astype(np.int16)
    else:
        y = np.clip(f, -1.0, 1.0).astype(dtype)
    return AudioClip(np.ascontiguousarray(y), int(sr))


def video_in(clip) -> tuple[np.ndarray, float]:
    if isinstance(clip, np.ndarray) or not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise TypeError("video must be a VideoClip or a (frames, fps) tuple")
    frames, fps = clip
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise TypeError("video frames must be a uint8 numpy array [T, H, W, 3]")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] == 0:
        raise ValueError(f"video frames must have shape [T, H, W, 3] with T > 0, got {frames.shape}")
    if frames.shape[1] < 16 or frames.shape[2] < 16:
        raise ValueError(f"video frames are too small: {frames.shape[1]}x{frames.shape[2]}")
    fps = float(fps)
    if not math.isfinite(fps) or not 0.5 <= fps <= 480:
        raise ValueError(f"fps must be in 0.5..480, got {fps}")
    return frames, fps


# ---- parameter checks shared by the attack modules -------------------------------------------------------
def need(cond: bool, msg: str) -> None:
    """Raise ValueError(msg) unless ``cond``."""
    if not cond:
        raise ValueError(msg)


def number(v: Any, name: str) -> float:
    """A finite int/float parameter as float (bools rejected)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return float(v)


def checker(fn):
    """Attach ``fn`` as the parameter check of the attack function it decorates (run at construction)."""

    def attach(attack_fn):
        attack_fn.check = fn
        return attack_fn

    return attach
