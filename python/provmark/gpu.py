"""CUDA backend for pictures and frames already on the GPU (torch CUDA tensors, CuPy arrays, any object with
``__cuda_array_interface__`` version 2 or 3).

The same watermark as :mod:`provmark.image`, computed where the data is: the full-resolution stages (luma,
texture mask, tiled pattern, add and clamp; luma and area resampling for detection) run as CUDA kernels
(``csrc/cuda/image_cuda.cu``) that share their per-element math with the CPU core (``csrc/core/image_math.h``).
Only small things cross to the host: the keyed 32 x 32 tiles (4 KiB per frame) go up; image-mode detection runs
the geometric search of :mod:`provmark.image` on device planes (whitening, folds, sync statistics and the lattice
search's FFTs and scores on the device) and brings back statistics, lattice scores and the tiles it decodes;
video-mode detection brings back one summed working-size luma plane (short side 512).
Nothing here imports torch or CuPy: arrays come in through ``__cuda_array_interface__`` and outputs are
allocated through the library of the input (``torch.empty_like`` / ``cupy.empty_like`` of the module the
input already came from).

Streams: work is queued on ``stream=`` (an integer ``cudaStream_t`` handle) when given, else on the
array's own ``stream`` entry (interface v3, e.g. CuPy), else on torch's current stream for torch tensors,
else on the legacy default stream. Embedding returns without synchronising (unless ``informed=True`` or the
float range check runs); detection synchronises (it returns :class:`provmark.Detection`).

Embedding uses the CPU engine's informed step when ``informed=True`` (the default of :func:`image_embed`,
as :func:`provmark.image.embed`): the working-size luma and mask are copied to the host and
``image._informed_factors`` computes the per-bit amplitudes, exactly as on the CPU. ``informed=False`` (the
frame embedder, as video does) keeps everything on the device. See docs/gpu.md.

Without a CUDA build or device, every function raises :class:`provmark.CudaError`; non-CUDA input raises
``TypeError``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core, image
from ._arrays import is_cuda_array, is_torch
from .detection import Detection
from .keys import Key
from .payload import DEFAULT_BITS, Payload

__all__ = [
    "LumaEmbedder",
    "image_detect",
    "image_detect_batch",
    "image_embed",
    "image_embed_batch",
    "is_available",
    "is_cuda_array",
    "work_luma",
]

CudaError = _core.CudaError

_TYPESTR = {"|u1": "uint8", "<u1": "uint8", "<u2": "uint16", "<i2": "int16", "<f2": "float16", "<f4": "float32",
            "<f8": "float64"}  # fmt: skip
_ITEMSIZE = {"uint8": 1, "uint16": 2, "int16": 2, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
_FLOATS = ("float16", "bfloat16", "float32", "float64")


def is_available() -> bool:
    """True when this build has the CUDA backend and a CUDA device is usable."""
    return _device_state()[0] > 0


@functools.lru_cache(maxsize=1)
def _device_state_cached() -> tuple[int, str | None]:
    return _core.cuda_device_count()


def _device_state() -> tuple[int, str | None]:
    state = _device_state_cached()
    if state[0] == 0:  # only a usable device is remembered
        _device_state_cached.cache_clear()
    return state


def _require_cuda(fn: str) -> None:
    count, error = _device_state()
    if count == 0:
        raise CudaError(f"{fn}: no usable CUDA device ({error})")


_is_torch = is_torch


def _is_cupy(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


# ---- __cuda_array_interface__ intake -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Array:
    """What provmark needs of a CUDA array: pointer, dtype, shape and element strides, stream entry."""

    obj: Any
    ptr: int
    dtype: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements
    readonly: bool
    stream: int | None

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self.dtype]

    def byte_extent(self) -> tuple[int, int]:
        """[lo, hi) bytes covered by the array."""
        lo = hi = 0
        for n, s in zip(self.shape, self.strides, strict=True):
            if s >= 0:
                hi += (n - 1) * s
            else:
                lo += (n - 1) * s
        return self.ptr + lo * self.itemsize, self.ptr + (hi + 1) * self.itemsize


def _cai(x: Any, fn: str) -> _Array:
    if not is_cuda_array(x):
        raise TypeError(
            f"{fn}: expected a CUDA array (a torch CUDA tensor, a CuPy array or any object with "
            f"__cuda_array_interface__), got {type(x).__name__}"
        )
    if _is_torch(x):
        x = x.detach()
    d = x.__cuda_array_interface__
    version = d.get("version")
    if not isinstance(version, int) or version < 2:
        raise ValueError(f"{fn}: __cuda_array_interface__ version {version!r} is not supported (need 2 or 3)")
    if d.get("mask") is not None:
        raise ValueError(f"{fn}: masked CUDA arrays are not supported")
    typestr = d.get("typestr")
    if typestr == "<V2" and _is_torch(x) and str(x.dtype) == "torch.bfloat16":
        dtype = "bfloat16"  # torch exports bfloat16 as an anonymous 2-byte type
    elif typestr in _TYPESTR:
        dtype = _TYPESTR[typestr]
    else:
        raise TypeError(
            f"{fn}: dtype must be uint8, uint16, int16, float16, bfloat16, float32 or float64 (little-endian), "
            f"got {typestr!r}"
        )
    item = _ITEMSIZE[dtype]
    shape = tuple(int(s) for s in d["shape"])
    if any(s <= 0 for s in shape):
        raise ValueError(f"{fn}: the array is empty (shape {shape})")
    raw = d.get("strides")
    if raw is None:
        strides: list[int] = []
        acc = 1
        for s in reversed(shape):
            strides.insert(0, acc)
            acc *= s
    else:
        if len(raw) != len(shape) or any(int(s) % item for s in raw):
            raise ValueError(f"{fn}: strides {tuple(raw)} are not whole elements of {item} bytes for shape {shape}")
        strides = [int(s) // item for s in raw]
    ptr, readonly = d["data"]
    if not ptr:
        raise ValueError(f"{fn}: the array has a null data pointer")
    stream = d.get("stream")
    if stream is not None and (not isinstance(stream, int) or isinstance(stream, bool) or stream < 0):
        raise ValueError(f"{fn}: __cuda_array_interface__ stream must be None or an int handle, got {stream!r}")
    return _Array(x, int(ptr), dtype, shape, tuple(strides), bool(readonly), stream or None)


def _pick_stream(a: _Array, stream: int | None, fn: str) -> int:
    """Explicit ``stream`` > the array's v3 ``stream`` entry > torch's current stream > legacy default (0)."""
    if stream is not None:
        if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
            raise ValueError(f"{fn}: stream must be a non-negative int (a cudaStream_t handle), got {stream!r}")
        return stream
    if a.stream is not None:
        return a.stream
    torch = sys.modules.get("torch")
    if torch is not None and _is_torch(a.obj):
        return int(torch.cuda.current_stream(a.obj.device).cuda_stream)
    return 0


# ---- allocation through the input's own library ----------------------------------------------------------
def _empty(like: Any, shape: tuple[int, ...], dtype: str) -> Any:
    if _is_torch(like):
        torch = sys.modules["torch"]
        return torch.empty(shape, dtype=getattr(torch, dtype), device=like.device)
    if _is_cupy(like):
        cupy = sys.modules["cupy"]
        with like.device:
            return cupy.empty(shape, dtype=dtype)
    raise TypeError(
        f"provmark.gpu: cannot allocate device memory like a {type(like).__name__}: pass a torch tensor or a "
        "CuPy array, or give out= (and informed=False)"
    )


def _empty_like(x: Any) -> Any:
    if _is_torch(x):
        return sys.modules["torch"].empty_like(x)
    if _is_cupy(x):
        with x.device:
            return sys.modules["cupy"].empty_like(x)
    return _empty(x, (), "uint8")  # raises the TypeError


def _clone(x: Any) -> Any:
    if _is_torch(x):
        return x.detach().clone()
    if _is_cupy(x):
        return x.copy()
    return _empty(x, (), "uint8")  # raises the TypeError


def _check_unit_range(x: Any, fn: str, lo_bound: float = 0.0) -> None:
    """Float pictures must be finite and in [0, 1] (as on the CPU), or [-1, 1] with ``value_range=(-1, 1)``;
    costs two reductions and a sync."""
    try:
        lo, hi = float(x.min()), float(x.max())
    except AttributeError as e:
        raise TypeError(f"{fn}: cannot check the value range of a {type(x).__name__}; pass check=False") from e
    if not (lo >= lo_bound and hi <= 1.0):  # NaN fails both comparisons
        raise ValueError(
            f"{fn}: float images must be finite and in [{lo_bound:g}, 1], got values in [{lo:.4g}, {hi:.4g}]"
        )


def _range_lo(value_range: Any, dtype: str, fn: str) -> float:
    """The lower bound of float samples, 0.0 for ``value_range=(0, 1)`` (the default) or -1.0 for (-1, 1)
    (float dtypes only)."""
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: value_range must be (0, 1) or (-1, 1), got {value_range!r}") from None
    if (lo, hi) == (0.0, 1.0):
        return 0.0
    if (lo, hi) != (-1.0, 1.0):
        raise ValueError(f"{fn}: value_range must be (0, 1) or (-1, 1), got {value_range!r}")
    if dtype not in _FLOATS:
        raise ValueError(f"{fn}: value_range=(-1, 1) applies to float pictures, got {dtype}")
    return -1.0


# ---- frames ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Frames:
    """N same-size frames of a CUDA array as the kernels see them."""

    arr: _Array
    n: int
    height: int
    width: int
    channels: int
    strides: tuple[int, int, int, int]  # (n, y, x, c) in elements
    scale: float
    shift: int = 0
    vmax: float = 0.0
    lo: float = 0.0  # float samples in [lo, 1]: 0, or -1 (value_range=(-1, 1), scale 127.5)

    def view(self, ptr: int | None = None, strides: tuple[int, int, int, int] | None = None) -> Any:
        sn, sy, sx, sc = self.strides if strides is None else strides
        return _core.CudaFrameView(
            self.arr.ptr if ptr is None else ptr,
            self.arr.dtype,
            self.n,
            self.height,
            self.width,
            self.channels,
            sn,
            sy,
            sx,
            sc,
            self.scale,
            self.shift,
            self.vmax,
            self.lo,
        )


def _layout(a: _Array, layout: str | None, batch: bool) -> str:
    """The explicit layout, or the one the shape implies: a colour axis (1, 3 or 4 entries) first ("CHW") or
    last ("HWC"); torch tensors prefer CHW and other arrays HWC when both could be the colour axis."""
    if layout is not None:
        if layout not in ("CHW", "HWC"):
            raise ValueError(f"provmark.gpu: layout must be 'CHW', 'HWC' or None, got {layout!r}")
        return layout
    lead = 1 if batch else 0
    if len(a.shape) != 3 + lead:
        return "HWC"
    first, last = a.shape[lead] in (1, 3, 4), a.shape[-1] in (1, 3, 4)
    if first and (_is_torch(a.obj) or not last):
        return "CHW"
    return "HWC"


def _frames(a: _Array, fn: str, batch: bool, layout: str | None, lo: float = 0.0) -> _Frames:
    """Pictures: CHW layout [C, H, W] / [N, C, H, W] (torch's), HWC layout [H, W(, C)] / [N, H, W(, C)]."""
    lay = _layout(a, layout, batch)
    shape, st = a.shape, a.strides
    lead = 1 if batch else 0
    want = "[N, C, H, W]" if batch else "[C, H, W]"
    if lay == "CHW":
        if len(shape) != 3 + lead or shape[lead] not in (1, 3, 4):
            raise ValueError(f"{fn}: expected {want} with C in (1, 3, 4), got shape {shape}")
        c, h, w = shape[lead:]
        sc, sy, sx = st[lead:]
    else:
        want = "[N, H, W] or [N, H, W, C]" if batch else "[H, W] or [H, W, C]"
        if len(shape) == 2 + lead:
            (h, w), c, (sy, sx), sc = shape[lead:], 1, st[lead:], 0
        elif len(shape) == 3 + lead and shape[-1] in (1, 3, 4):
            h, w, c = shape[lead:]
            sy, sx, sc = st[lead:]
        else:
            raise ValueError(f"{fn}: expected {want} with C in (1, 3, 4), got shape {shape}")
    if a.dtype == "uint16":
        raise TypeError(f"{fn}: uint16 pictures are supported as luma planes only (gpu.LumaEmbedder with bit_depth)")
    if a.dtype == "int16":
        raise TypeError(f"{fn}: int16 is an audio sample type (provmark.gpu_audio); pictures are uint8 or float")
    n = shape[0] if batch else 1
    sn = st[0] if batch else 0
    scale = 1.0 if a.dtype == "uint8" else 255.0 / (1.0 - lo)
    return _Frames(a, n, h, w, c, (sn, sy, sx, sc), scale, lo=lo)


def _plane_frames(a: _Array, fn: str, height: int, width: int, bit_depth: int, shift: int, lo: float = 0.0) -> _Frames:
    """Luma planes: [rows, W] or [N, rows, W] with rows >= height (the Y plane is the first `height` rows, as in
    nv12 / nv21 / yuv420p / p010 buffers); uint8 (bit_depth 8), uint16 (bit_depth 9..16, stored << shift) or
    float in [0, 1]."""
    if len(a.shape) not in (2, 3):
        raise ValueError(f"{fn}: expected a luma plane [rows, W] or [N, rows, W], got shape {a.shape}")
    if a.dtype == "int16":
        raise TypeError(f"{fn}: int16 is an audio sample type; luma planes are uint8, uint16 or float")
    batch = len(a.shape) == 3
    rows, w = a.shape[-2:]
    if w != width or rows < height:
        raise ValueError(f"{fn}: expected a plane of width {width} with at least {height} rows, got shape {a.shape}")
    sy, sx = a.strides[-2:]
    sn = a.strides[0] if batch else 0
    n = a.shape[0] if batch else 1
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int):
        raise TypeError(f"{fn}: bit_depth must be an int, got {type(bit_depth).__name__}")
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= 7:
        raise ValueError(f"{fn}: shift must be an int in [0, 7], got {shift!r}")
    if a.dtype == "uint16":
        if not 9 <= bit_depth <= 16 or bit_depth + shift > 16:
            raise ValueError(
                f"{fn}: uint16 planes need bit_depth in 9..16 (and bit_depth + shift <= 16), got {bit_depth}"
            )
        return _Frames(a, n, height, width, 1, (sn, sy, sx, 0), 255.0, shift, float((1 << bit_depth) - 1))
    if bit_depth != 8 or shift != 0:
        raise ValueError(
            f"{fn}: bit_depth / shift apply to uint16 planes only, got bit_depth={bit_depth} shift={shift}"
        )
    return _Frames(a, n, height, width, 1, (sn, sy, sx, 0), 1.0 if a.dtype == "uint8" else 255.0 / (1.0 - lo), lo=lo)


def _overlaps(a: _Array, b: _Array) -> bool:
    (a0, a1), (b0, b1) = a.byte_extent(), b.byte_extent()
    return a0 < b1 and b0 < a1


def _is_batch(a: _Array, layout: str | None) -> bool:
    """Whether a picture array holds N frames: 4 axes, or 3 axes with no colour axis ([N, H, W] grey)."""
    if len(a.shape) == 4:
        return True
    if len(a.shape) != 3:
        return False
    if layout == "CHW":
        return a.shape[0] not in (1, 3, 4)
    if layout == "HWC":
        return a.shape[-1] not in (1, 3, 4)
    return a.shape[0] not in (1, 3, 4) and a.shape[-1] not in (1, 3, 4)


def _output(fr: _Frames, out: Any, fn: str, clone: bool, frames_of: Any) -> tuple[Any, _Frames]:
    """The array to write (``out``, or a new one from the input's library) and its frames (``frames_of``)."""
    x = fr.arr.obj
    if out is None:
        _require_cuda(fn)
        out = _clone(x) if clone else _empty_like(x)
    o = _cai(out, fn)
    if o.shape != fr.arr.shape or o.dtype != fr.arr.dtype:
        raise ValueError(
            f"{fn}: out must have the input's shape and dtype {fr.arr.shape} {fr.arr.dtype}, got {o.shape} {o.dtype}"
        )
    if o.readonly:
        raise ValueError(f"{fn}: out is read-only")
    if any(st == 0 and n > 1 for n, st in zip(o.shape, o.strides, strict=True)):
        raise ValueError(f"{fn}: out is a broadcast view (a zero stride): its elements overlap")
    same = o.ptr == fr.arr.ptr and o.strides == fr.arr.strides
    if not same and _overlaps(o, fr.arr):
        raise ValueError(f"{fn}: out overlaps the input without being the input itself")
    return out, frames_of(o)


# ---- embedding -------------------------------------------------------------------------------------------------
def _to_host(dev: Any, shape: tuple[int, ...], stream: int) -> np.ndarray:
    host = np.empty(shape, np.float32)
    _core.cuda_copy_to_host(_cai(dev, "provmark.gpu").ptr, host, stream)
    return host


def _tiles(fr: _Frames, pls: Sequence[Payload], secret: bytes, informed: bool, stream: int, chip: float) -> np.ndarray:
    tiles = np.empty((fr.n, image.TILE, image.TILE), np.float32)
    factors: list[np.ndarray | None] = [None] * fr.n
    if informed:
        hw, ww, s = image._work_shape(fr.height, fr.width)
        x = fr.arr.obj
        yw = _empty(x, (fr.n, hw, ww), "float32")
        _core.cuda_image_resample(fr.view(), _cai(yw, "gpu").ptr, hw, ww, stream)
        mask = _empty(x, (fr.n, fr.height, fr.width), "float32")
        _core.cuda_image_mask(fr.view(), _cai(mask, "gpu").ptr, stream)
        if s != 1.0:
            mplane = _Frames(
                _cai(mask, "gpu"), fr.n, fr.height, fr.width, 1, (fr.height * fr.width, fr.width, 1, 0), 1.0
            )
            mw = _empty(x, (fr.n, hw, ww), "float32")
            _core.cuda_image_resample(mplane.view(), _cai(mw, "gpu").ptr, hw, ww, stream)
        else:
            mw = mask
        y_host = _to_host(yw, (fr.n, hw, ww), stream)
        m_host = _to_host(mw, (fr.n, hw, ww), stream)
        for i, pl in enumerate(pls):
            tabs = image._tables(secret, pl.bits)
            # working-size planes in, chip at the working scale: image._informed_factors then resamples nothing
            factors[i] = image._informed_factors(y_host[i], m_host[i], tabs, pl.encode().astype(np.float64), chip * s)
    for i, pl in enumerate(pls):
        tabs = image._tables(secret, pl.bits)
        tiles[i] = tabs.tile(pl.encode().astype(np.float64), factors[i])
    return tiles


def _embed(
    x: Any,
    payloads: Any,
    key: Key,
    strength: float,
    *,
    batch: bool,
    informed: bool,
    out: Any,
    stream: int | None,
    layout: str | None,
    check: bool,
    value_range: Any,
    fn: str,
) -> Any:
    secret = image._key_secret(key)
    s = image._check_strength(strength, fn)
    a = _cai(x, fn)
    lo = _range_lo(value_range, a.dtype, fn)
    fr = _frames(a, fn, batch, layout, lo)
    if min(fr.height, fr.width) < image.MIN_EMBED_SIDE:
        raise ValueError(
            f"{fn}: the image must be at least {image.MIN_EMBED_SIDE} px on each side, got {fr.width}x{fr.height}"
        )
    if isinstance(payloads, (list, tuple)):
        if not batch or len(payloads) != fr.n:
            raise ValueError(f"{fn}: {len(payloads)} payloads for {fr.n} images")
        pls = [Payload.coerce(p) for p in payloads]
    else:
        pls = [Payload.coerce(payloads)] * fr.n
    st = _pick_stream(a, stream, fn)
    result, ofr = _output(fr, out, fn, False, lambda o: _frames(o, fn, batch, layout, lo))
    _require_cuda(fn)
    if check and a.dtype in _FLOATS:
        _check_unit_range(a.obj, fn, lo)
    chip = image._chip_size(min(fr.height, fr.width))
    tiles = _tiles(fr, pls, secret, informed, st, chip)
    _core.cuda_image_embed(fr.view(), ofr.view(), tiles, float(chip), float(image.TARGET_RMS * s), st)
    return result


def image_embed(
    x: Any,
    payload: Payload | bytes | int,
    key: Key,
    strength: float = 1.0,
    *,
    informed: bool = True,
    out: Any = None,
    stream: int | None = None,
    layout: str | None = None,
    check: bool = True,
    value_range: tuple[float, float] = (0, 1),
) -> Any:
    """Watermark one picture on the GPU; returns a new array of the same type, shape, dtype and device.

    ``x``: a CUDA array ``[C, H, W]``, ``[H, W, C]`` or ``[H, W]`` (the colour axis is the one with 1, 3 or 4
    entries; when both ends could be, torch tensors are read as CHW and other arrays as HWC; ``layout="CHW"``
    or ``"HWC"`` says it); a 4-axis torch tensor goes to :func:`image_embed_batch`. uint8, or float32 /
    float64 in [0, 1] (float16 / bfloat16 too: marked in float32 and rounded back); C in (1, 3, 4), alpha
    untouched. The result matches :func:`provmark.image.embed` on the same picture within 1 LSB.

    ``out`` (optional) receives the result; ``out=x`` marks in place. ``informed=False`` skips the informed
    step (no host round trip: fully asynchronous). ``check=False`` skips the float range check (a reduction
    and a sync). ``value_range=(-1, 1)``: float samples in [-1, 1] (marked as (x + 1) / 2 would be in [0, 1];
    the output stays in [-1, 1]).
    """
    if _is_torch(x) and x.dim() == 4:
        return image_embed_batch(
            x, payload, key, strength, informed=informed, out=out, stream=stream, layout=layout, check=check,
            value_range=value_range,
        )  # fmt: skip
    return _embed(
        x, payload, key, strength, batch=False, informed=informed, out=out, stream=stream, layout=layout,
        check=check, value_range=value_range, fn="gpu.image_embed",
    )  # fmt: skip


def image_embed_batch(
    x: Any,
    payloads: Any,
    key: Key,
    strength: float = 1.0,
    *,
    informed: bool = True,
    out: Any = None,
    stream: int | None = None,
    layout: str | None = None,
    check: bool = True,
    value_range: tuple[float, float] = (0, 1),
) -> Any:
    """Watermark N same-size pictures in one launch per stage: ``[N, C, H, W]``, ``[N, H, W, C]`` or ``[N, H, W]``.

    ``payloads``: one payload for all, or a sequence of N. Other arguments as :func:`image_embed`.
    """
    return _embed(
        x, payloads, key, strength, batch=True, informed=informed, out=out, stream=stream, layout=layout,
        check=check, value_range=value_range, fn="gpu.image_embed_batch",
    )  # fmt: skip


class LumaEmbedder:
    """The GPU twin of :class:`provmark.image.LumaEmbedder` with ``informed="off"`` (video frames): one prepared
    tile for a frame size, a payload and a key; ``mark`` queues two kernels and returns without a sync.

    ``mark(x)`` takes what :func:`image_embed` takes (torch ``[C, H, W]`` / ``[N, C, H, W]`` RGB(A) or grey,
    CuPy ``[H, W(, C)]``), or with ``plane=True`` a luma plane ``[rows, W]`` / ``[N, rows, W]`` whose first
    ``height`` rows are Y (a Y plane with a row pitch, or a whole nv12 / yuv420p / p010 buffer: the chroma
    rows are left as they are): uint8, float in [0, 1], or uint16 with ``bit_depth`` bits stored ``<< shift``
    (p010: ``bit_depth=10, shift=6``). ``flat_rms``: the flat pixels' limit, as in the host twin.
    """

    def __init__(
        self,
        width: int,
        height: int,
        payload: Payload | bytes | int,
        key: Key,
        strength: float = 1.0,
        *,
        flat_rms: float | None = None,
    ) -> None:
        for name, v in (("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"gpu.LumaEmbedder: {name} must be a positive int, got {v!r}")
        if min(width, height) < image.MIN_EMBED_SIDE:
            raise ValueError(
                f"gpu.LumaEmbedder: frames must be at least {image.MIN_EMBED_SIDE} px on each side, "
                f"got {width}x{height}"
            )
        self.width, self.height = int(width), int(height)
        secret = image._key_secret(key)
        self.payload = Payload.coerce(payload)
        self.strength = image._check_strength(strength, "gpu.LumaEmbedder")
        self.flat_rms = image._check_flat_rms(flat_rms, "gpu.LumaEmbedder")
        self.chip = image._chip_size(min(self.height, self.width))
        self._target = float(image.TARGET_RMS * self.strength)
        tabs = image._tables(secret, self.payload.bits)
        self._tile = tabs.tile(self.payload.encode().astype(np.float64)).astype(np.float32)

    def mark(
        self,
        x: Any,
        *,
        plane: bool = False,
        bit_depth: int = 8,
        shift: int = 0,
        out: Any = None,
        stream: int | None = None,
        layout: str | None = None,
        check: bool = False,
        value_range: tuple[float, float] = (0, 1),
    ) -> Any:
        """Return the marked frame(s) (a new array, or ``out``; ``out=x`` marks in place). ``value_range=(-1,
        1)``: float samples in [-1, 1] (output in [-1, 1])."""
        fn = "gpu.LumaEmbedder.mark"
        a = _cai(x, fn)
        lo = _range_lo(value_range, a.dtype, fn)
        if plane:

            def frames_of(arr: _Array) -> _Frames:
                return _plane_frames(arr, fn, self.height, self.width, bit_depth, shift, lo)

        else:
            batch = _is_batch(a, layout)

            def frames_of(arr: _Array) -> _Frames:
                return _frames(arr, fn, batch, layout, lo)

        fr = frames_of(a)
        if (fr.height, fr.width) != (self.height, self.width):
            raise ValueError(f"{fn}: frames are {fr.width}x{fr.height}, expected {self.width}x{self.height}")
        st = _pick_stream(a, stream, fn)
        if plane and out is not None and _cai(out, fn).ptr != a.ptr:
            raise ValueError(f"{fn}: with plane=True, out must be the input itself (in place) or None")
        # a plane's buffer may hold other rows (chroma) that must come through unchanged: a plane is marked in
        # place, on a clone of the whole buffer (or on the input itself when out=x)
        result, ofr = _output(fr, out, fn, plane, frames_of)
        _require_cuda(fn)
        if check and a.dtype in _FLOATS:
            _check_unit_range(a.obj, fn, lo)
        tiles = np.ascontiguousarray(np.broadcast_to(self._tile, (fr.n, image.TILE, image.TILE)))
        src = ofr if plane else fr
        _core.cuda_image_embed(src.view(), ofr.view(), tiles, float(self.chip), self._target, st, self.flat_rms or 0.0)
        return result


# ---- detection -------------------------------------------------------------------------------------------------
def _work_luma_device(x: Any, fn: str, batch: bool | None, stream: int | None, layout: str | None,
                      value_range: Any) -> tuple[Any, _Frames, int, int, int]:  # fmt: skip
    """The working-size luma of every frame on the device: (device array [N, h, w] float32, frames, h, w,
    stream)."""
    a = _cai(x, fn)
    lo = _range_lo(value_range, a.dtype, fn)
    if batch is None:
        batch = _is_batch(a, layout)
    fr = _frames(a, fn, batch, layout, lo)
    st = _pick_stream(a, stream, fn)
    _require_cuda(fn)
    hw, ww, _s = image._work_shape(fr.height, fr.width)
    dev = _empty(a.obj, (fr.n, hw, ww), "float32")
    _core.cuda_image_resample(fr.view(), _cai(dev, fn).ptr, hw, ww, st)
    return dev, fr, hw, ww, st


def work_luma(
    x: Any,
    *,
    reduce: str | None = None,
    batch: bool | None = None,
    stream: int | None = None,
    layout: str | None = None,
    value_range: tuple[float, float] = (0, 1),
) -> np.ndarray:
    """Luma at the detector's working size (short side at most 512; grey levels), computed on the device, as
    host float32 ``[N, h, w]``; ``reduce="sum"`` returns the float64 sum over the N frames ``[h, w]`` instead
    (one small copy: video detection averages frames). Synchronises."""
    fn = "gpu.work_luma"
    if reduce not in (None, "sum"):
        raise ValueError(f"{fn}: reduce must be None or 'sum', got {reduce!r}")
    dev, fr, hw, ww, st = _work_luma_device(x, fn, batch, stream, layout, value_range)
    dptr = _cai(dev, fn).ptr
    if reduce == "sum":
        total = _empty(fr.arr.obj, (hw, ww), "float64")
        _core.cuda_sum_planes(dptr, fr.n, hw * ww, _cai(total, fn).ptr, st)
        host = np.empty((hw, ww), np.float64)
        _core.cuda_copy_to_host(_cai(total, fn).ptr, host, st)
        return host
    return _to_host(dev, (fr.n, hw, ww), st)


class _DevicePlane:
    """A device plane of the search (a whitening and its denominator, or a reliability-weighted plane), with
    its host copy once one was needed."""

    __slots__ = ("den", "host", "ptr", "w")

    def __init__(self, w: Any, den: Any = None) -> None:
        self.w, self.den = w, den
        self.ptr = _cai(w, "provmark.gpu").ptr
        self.host: np.ndarray | None = None


def _bit_reversal(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)], np.int64)


@functools.lru_cache(maxsize=16)
def _sync_spectra(secret: bytes, payload_bits: int) -> np.ndarray:
    """The sync template's spectra as ``cuda_image_sync`` reads them: [2, 128, 128, 2] float32, (re, im) of the
    host's ``_Tables.sync_fft_pair`` (conj rfft2 of the template and of its mirror, complex64) extended to the
    full 128 x 128 spectrum by Hermitian symmetry (so the values are exactly the host's), rows and columns in
    bit-reversed order (the device FFT's output order). Once per (key, payload size)."""
    half = image._tables(secret, payload_bits).sync_fft_pair  # [2, n, n / 2 + 1]
    n = image.TILE * image.BINS
    full = np.empty((2, n, n), np.complex64)
    full[:, :, : n // 2 + 1] = half
    ky = (-np.arange(n)) % n
    kx = np.arange(n // 2 + 1, n)
    full[:, :, kx] = np.conj(half[:, ky][:, :, n - kx])
    rev = _bit_reversal(n)
    full = full[:, rev][:, :, rev]
    return np.ascontiguousarray(np.stack([full.real, full.imag], axis=-1).astype(np.float32))


class _DeviceTile:
    """A folded tile left on the device, with its sync statistic computed there (``sync``: z, (shift row,
    shift column), flip, as image._Search.evaluate computes them); the tile is copied to the host (128 KiB)
    only when read as an array (``np.asarray``), i.e. for the few hypotheses that get decoded."""

    __slots__ = ("_host", "batch", "offset", "owner", "sync")

    def __init__(self, owner: _DevicePlanes, batch: Any, offset: int, sync: tuple[float, tuple[float, float], bool]):
        self.owner, self.batch, self.offset, self.sync = owner, batch, offset, sync
        self._host: np.ndarray | None = None

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if self._host is None:
            side = image.TILE * image.BINS
            host = np.empty((side, side), np.float64)
            _core.cuda_copy_to_host(_cai(self.batch, "provmark.gpu").ptr + self.offset, host, self.owner.stream)
            self._host = host
            self.owner.tile_copies += 1
        return self._host if dtype is None else self._host.astype(dtype)


class _DevicePlanes:
    """image._Search's whitening, folds and sync statistics on the device (the provider interface of
    image._HostPlanes): the working-size luma stays on the GPU, whitenings (``cuda_image_whiten``) and
    reliability-weighted planes (``cuda_image_reliability``) are made there, and every batch of hypotheses the
    search folds ahead (the nominal lattices, the lattice candidates with their period steps, the crop scan,
    each round of the hill climb) is folded in one launch (``cuda_image_fold_many``). With ``spectra`` (the
    device copy of :func:`_sync_spectra`), the sync correlation of every tile of a batch of whitened planes runs
    there too (``cuda_image_sync``): only K x (z, shift, flip) come back, and a tile is copied only when the
    search decodes it (:class:`_DeviceTile`); without it (and for the reliability-weighted folds, which are
    decoded, not scored) the tiles come back. The lattice search's autocorrelation and scores run there too
    (``cuda_image_lattice_scores``, :meth:`lattice_candidates`): no whitened plane comes to the host (``host``
    remains for callers that ask for one)."""

    batched = True
    y = None

    def __init__(self, like: Any, y_ptr: int, height: int, width: int, stream: int, spectra: Any = None) -> None:
        self.like, self.y_ptr, self.height, self.width, self.stream = like, y_ptr, height, width, stream
        self.spectra = spectra
        self.folds = 0  # hypotheses folded (ahead or not)
        self.launches = 0  # fold launches
        self.synced = 0  # tiles whose sync statistic ran on the device
        self.tile_copies = 0  # tiles copied to the host
        self.lattice_runs = 0  # lattice searches scored on the device
        self.plane_copies = 0  # whitened planes copied to the host

    def _plane(self) -> Any:
        return _empty(self.like, (self.height, self.width), "float32")

    def whiten(self, c: float) -> _DevicePlane:
        w, den = self._plane(), self._plane()
        _core.cuda_image_whiten(
            self.y_ptr, 1, self.height, self.width, float(c), _cai(w, "gpu").ptr, 0, _cai(den, "gpu").ptr,
            self.stream,
        )  # fmt: skip
        return _DevicePlane(w, den)

    def host(self, plane: _DevicePlane) -> np.ndarray:
        if plane.host is None:
            plane.host = _to_host(plane.w, (self.height, self.width), self.stream)
            self.plane_copies += 1
        return plane.host

    def lattice_candidates(self, plane: _DevicePlane, n_out: int, src_scale: float) -> list[tuple[float, float]]:
        """image._lattice_candidates on the device (``cuda_image_lattice_scores``: the FFTs at the host's sizes,
        the flattening, the autocorrelation and the scores); only the [periods, angles] scores come back, and
        the host picks the candidates from them as image._lattice_pick does."""
        plan = image._lattice_plan(self.height, self.width, src_scale)
        if plan is None:
            return []
        fh, fw, sigma, rows, cols, pgrid, tgrid = plan
        sc = _core.cuda_image_lattice_scores(
            plane.ptr, self.height, self.width, fh, fw, float(sigma[0]), float(sigma[1]), rows.astype(np.uint8),
            cols.astype(np.uint8), pgrid, tgrid, self.stream,
        )  # fmt: skip
        self.lattice_runs += 1
        return image._lattice_pick(sc, pgrid, tgrid, n_out)

    def reliability(self, plane: _DevicePlane) -> _DevicePlane:
        out = self._plane()
        _core.cuda_image_reliability(
            plane.ptr, _cai(plane.den, "gpu").ptr, 1, self.height, self.width, float(image.RELIABILITY_FLOOR),
            _cai(out, "gpu").ptr, self.stream,
        )  # fmt: skip
        return _DevicePlane(out)

    def fold(self, planes: Sequence[_DevicePlane], periods: Sequence[float], thetas: Sequence[float]) -> list[Any]:
        k, side = len(planes), image.TILE * image.BINS
        out = _empty(self.like, (k, side, side), "float64")
        optr = _cai(out, "gpu").ptr
        _core.cuda_image_fold_many(
            np.array([p.ptr for p in planes], np.uint64), np.asarray(periods, np.float64),
            np.asarray(thetas, np.float64), self.height, self.width, optr, side, self.stream,
        )  # fmt: skip
        self.folds += k
        self.launches += 1
        if self.spectra is not None and all(p.den is not None for p in planes):  # whitened planes: scored
            stats = _empty(self.like, (k, 4), "float64")
            _core.cuda_image_sync(optr, k, _cai(self.spectra, "gpu").ptr, _cai(stats, "gpu").ptr, self.stream)
            host = np.empty((k, 4), np.float64)
            _core.cuda_copy_to_host(_cai(stats, "gpu").ptr, host, self.stream)
            self.synced += k
            return [
                _DeviceTile(self, out, i * side * side * 8, (float(z), (float(sy), float(sx)), bool(fl)))
                for i, (z, sy, sx, fl) in enumerate(host)
            ]
        host = np.empty((k, side, side), np.float64)
        _core.cuda_copy_to_host(optr, host, self.stream)
        self.tile_copies += k
        return list(host)


def _detect(x: Any, key: Key, fpr: float, payload_bits: int, full_search: bool, batch: bool, stream: int | None,
            layout: str | None, value_range: Any, fn: str) -> list[Detection]:  # fmt: skip
    secret = image._key_secret(key)
    f = image._check_fpr(fpr, fn)
    image._tables(secret, payload_bits)
    a = _cai(x, fn)
    fr = _frames(a, fn, batch, layout, _range_lo(value_range, a.dtype, fn))
    if min(fr.height, fr.width) < image.MIN_DETECT_SIDE:
        raise ValueError(
            f"{fn}: the image must be at least {image.MIN_DETECT_SIDE} px on each side, got {fr.width}x{fr.height}"
        )
    dev, fr, hw, ww, st = _work_luma_device(x, fn, batch, stream, layout, value_range)
    base = _cai(dev, fn).ptr
    spectra_host = _sync_spectra(secret, payload_bits)
    spectra = _empty(a.obj, spectra_host.shape, "float32")  # uploaded once per call
    _core.cuda_copy_to_device(_cai(spectra, fn).ptr, spectra_host, st)
    dets = []
    for i in range(fr.n):
        planes = _DevicePlanes(a.obj, base + i * hw * ww * 4, hw, ww, st, spectra)
        dets.append(image._detect_work(planes, fr.height, fr.width, secret, payload_bits, f, full_search))
    return dets


def image_detect(
    x: Any,
    key: Key,
    *,
    fpr: float = image.DEFAULT_FPR,
    payload_bits: int = DEFAULT_BITS,
    full_search: bool = False,
    stream: int | None = None,
    layout: str | None = None,
    value_range: tuple[float, float] = (0, 1),
) -> Detection | list[Detection]:
    """Detect in one CUDA picture (a ``[N, C, H, W]`` torch tensor gives a list, as :func:`image_detect_batch`).

    The working-size luma, the whitenings, the folds of every geometry hypothesis and their sync correlations
    (z, best shift and flip) run on the device (batches of hypotheses in one launch each); only the statistics
    come back, plus the tiles of the hypotheses that get decoded. The lattice search's FFTs, flattening and scores
    run on the device too (the [periods, angles] scores come back); the candidate picks and the decoding run on
    the host as in :func:`provmark.image.detect`, which this equals up to float rounding. Synchronises."""
    if _is_torch(x) and x.dim() == 4:
        return image_detect_batch(
            x, key, fpr=fpr, payload_bits=payload_bits, full_search=full_search, stream=stream, layout=layout,
            value_range=value_range,
        )  # fmt: skip
    return _detect(x, key, fpr, payload_bits, full_search, False, stream, layout, value_range, "gpu.image_detect")[0]


def image_detect_batch(
    x: Any,
    key: Key,
    *,
    fpr: float = image.DEFAULT_FPR,
    payload_bits: int = DEFAULT_BITS,
    full_search: bool = False,
    stream: int | None = None,
    layout: str | None = None,
    value_range: tuple[float, float] = (0, 1),
) -> list[Detection]:
    """Detect in N same-size CUDA pictures (one device pass for the working-size luma of all); one Detection
    each."""
    return _detect(x, key, fpr, payload_bits, full_search, True, stream, layout, value_range, "gpu.image_detect_batch")
