"""CPU vs CUDA parity of the keyed pattern generator (skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from provmark import _core

pytestmark = pytest.mark.cuda
S = _core.Stream


@pytest.mark.parametrize("n,offset", [(1, 0), (1000, 3), (1 << 20, 12345)])
def test_exact_kinds_match(n: int, offset: int) -> None:
    key = np.random.default_rng().bytes(32)
    for fn in (_core.random_words, _core.random_uniform, _core.random_signs):
        np.testing.assert_array_equal(fn(key, S.IMAGE_SYNC, n, offset, "cpu"), fn(key, S.IMAGE_SYNC, n, offset, "cuda"))


def test_normal_within_one_ulp() -> None:
    key = np.random.default_rng().bytes(32)
    cpu = _core.random_normal(key, S.TEST, 100_000, 7, "cpu")
    gpu = _core.random_normal(key, S.TEST, 100_000, 7, "cuda")
    np.testing.assert_array_max_ulp(cpu, gpu, maxulp=1)


def test_bad_device_index_raises_cuda_error() -> None:
    with pytest.raises(_core.CudaError):
        _core.random_words(bytes(32), S.TEST, 10, 0, "cuda:999")
