"""Which arrays live on a CUDA device: the one test every engine uses to route input to its GPU twin.

Light on purpose (numpy only): the engines call it on every input, and importing provmark.gpu happens only
once a CUDA array actually arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "dim")


def is_cuda_array(x: Any) -> bool:
    """True for a torch CUDA tensor, a CuPy array or any object exposing ``__cuda_array_interface__``."""
    if isinstance(x, np.ndarray):
        return False
    if is_torch(x):
        return bool(getattr(x, "is_cuda", False))
    try:  # the property itself may raise (a torch CUDA tensor that requires grad raises RuntimeError)
        return hasattr(x, "__cuda_array_interface__")
    except Exception:
        return False


def cuda_ndim(x: Any) -> int:
    """Number of axes of a CUDA array (torch tensors answer without building the interface dict)."""
    return x.dim() if is_torch(x) else len(x.__cuda_array_interface__["shape"])
