"""Shared fixtures and the CUDA skip rule."""

from __future__ import annotations

import numpy as np
import pytest

import provmark


def _cuda_usable() -> bool:
    info = provmark.backend_info()
    return info["compiled_with_cuda"] and info["cuda_device_count"] > 0


CUDA_AVAILABLE = _cuda_usable()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CUDA_AVAILABLE:
        return
    reason = "needs a CUDA build and a CUDA device: " + str(provmark.backend_info()["cuda_error"])
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh random generator per test; the seed is printed on failure via the test id."""
    return np.random.default_rng()


@pytest.fixture
def key() -> provmark.Key:
    return provmark.Key.generate()
