"""provmark: provenance engine for AI-generated media.

Robust invisible watermarks for images, audio and video (C++ core, optional CUDA), the content labels that
AI-content rules require (GB 45438 metadata, explicit labels), an audit ledger, and a robustness benchmark.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._core import CudaError
from .backend import backend, backend_info, get_num_threads, set_num_threads
from .detection import Detection
from .keys import Key
from .payload import Payload

__version__ = "0.1.0"

# Modality and policy modules load on first use, so `import provmark` stays light.
_LAZY_MODULES = ("image", "audio", "video", "labels", "ledger", "bench", "media", "batch")

__all__ = [
    "CudaError",
    "Detection",
    "Key",
    "Payload",
    "__version__",
    "backend",
    "backend_info",
    "get_num_threads",
    "set_num_threads",
    "verify",
    *_LAZY_MODULES,
]


def __getattr__(name: str) -> Any:
    if name == "verify":
        from .labels.pipeline import verify

        return verify
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'provmark' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES) | {"verify"})
