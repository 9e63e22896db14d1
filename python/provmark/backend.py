"""Which native backend is in use, and its knobs."""

from __future__ import annotations

from typing import Any

from . import _core


def backend_info() -> dict[str, Any]:
    """Facts about the native core: CUDA build and devices, SIMD level, thread count."""
    count, error = _core.cuda_device_count()
    return {
        "version": getattr(_core, "__version__", None),
        "compiled_with_cuda": bool(_core.built_with_cuda()),
        "cuda_device_count": int(count),
        "cuda_error": error,
        "simd_level": _core.simd_level(),
        "simd_level_supported": _core.simd_level_supported(),
        "num_threads": int(_core.num_threads()),
    }


def backend() -> str:
    """'cuda' when a CUDA device can be used, else 'cpu'."""
    count, _ = _core.cuda_device_count()
    return "cuda" if count > 0 else "cpu"


def set_num_threads(n: int) -> None:
    """Threads used by the native core (>= 1). Also settable with PROVMARK_NUM_THREADS."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads used by the native core."""
    return int(_core.num_threads())
