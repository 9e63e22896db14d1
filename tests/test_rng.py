"""Keyed randomness (csrc/core/rng.h): ChaCha20 exactness, streams, offsets, SIMD levels, threads."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from provmark import _core, get_num_threads, set_num_threads

S = _core.Stream


def reference_words(key: bytes, stream: int, first_word: int, n: int) -> np.ndarray:
    """Keystream words from OpenSSL's ChaCha20 (via `cryptography`), the independent twin of rng.h."""
    block0 = first_word // 16
    nblocks = (first_word + n + 15) // 16 - block0
    nonce = block0.to_bytes(8, "little") + stream.to_bytes(8, "little")
    stream_bytes = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor().update(bytes(64 * nblocks))
    words = np.frombuffer(stream_bytes, dtype="<u4")
    return words[first_word - 16 * block0 :][:n]


@pytest.mark.parametrize("n,offset", [(1, 0), (16, 0), (17, 5), (1000, 0), (4099, 123), (70001, 31)])
def test_words_match_openssl_chacha20(n: int, offset: int) -> None:
    key = np.random.default_rng().bytes(32)
    got = _core.random_words(key, S.IMAGE_PAYLOAD, n, offset=offset)
    want = reference_words(key, int(S.IMAGE_PAYLOAD), offset, n)
    np.testing.assert_array_equal(got, want)


def test_offset_slices_agree() -> None:
    key = bytes(32)
    whole = _core.random_uniform(key, S.TEST, 5000)
    part = _core.random_uniform(key, S.TEST, 777, offset=1234)
    np.testing.assert_array_equal(whole[1234 : 1234 + 777], part)
    normal_whole = _core.random_normal(key, S.TEST, 300)
    np.testing.assert_array_equal(normal_whole[100:200], _core.random_normal(key, S.TEST, 100, offset=100))


def test_streams_and_keys_differ() -> None:
    k1, k2 = bytes(32), bytes([1]) + bytes(31)
    a = _core.random_words(k1, S.IMAGE_SYNC, 256)
    assert not np.array_equal(a, _core.random_words(k1, S.IMAGE_PAYLOAD, 256))
    assert not np.array_equal(a, _core.random_words(k2, S.IMAGE_SYNC, 256))
    np.testing.assert_array_equal(a, _core.random_words(k1, S.IMAGE_SYNC, 256))


def test_value_distributions() -> None:
    key = np.random.default_rng().bytes(32)
    n = 200_000
    u = _core.random_uniform(key, S.TEST, n)
    assert u.dtype == np.float32 and u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    s = _core.random_signs(key, S.TEST, n)
    assert s.dtype == np.int8 and set(np.unique(s)) == {-1, 1}
    assert abs(s.mean()) < 5 / np.sqrt(n)
    z = _core.random_normal(key, S.TEST, n)
    assert abs(z.mean()) < 5 / np.sqrt(n) and abs(z.std() - 1) < 0.01
    # uniform and signs are exact functions of the words
    w = _core.random_words(key, S.TEST, 1000)
    np.testing.assert_array_equal(u[:1000], (w >> 8).astype(np.float32) / np.float32(2**24))
    np.testing.assert_array_equal(s[:1000], np.where(w >> 31, 1, -1))


def test_permutation_is_a_keyed_permutation() -> None:
    key = np.random.default_rng().bytes(32)
    p = _core.random_permutation(key, S.IMAGE_PERMUTE, 1000)
    assert p.dtype == np.int32 and np.array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, _core.random_permutation(key, S.IMAGE_PERMUTE, 1000))
    assert not np.array_equal(p, _core.random_permutation(bytes(32), S.IMAGE_PERMUTE, 1000))
    assert _core.random_permutation(key, S.IMAGE_PERMUTE, 0).size == 0
    assert list(_core.random_permutation(key, S.IMAGE_PERMUTE, 1)) == [0]


@pytest.fixture
def restore_backend_state():
    level, threads = _core.simd_level(), get_num_threads()
    yield
    _core.set_simd_level(level)
    set_num_threads(threads)


def test_simd_levels_and_thread_counts_agree(restore_backend_state) -> None:
    key = np.random.default_rng().bytes(32)
    levels = ["baseline"] + (["avx2"] if _core.simd_level_supported() == "avx2" else [])
    results = []
    for level in levels:
        _core.set_simd_level(level)
        assert _core.simd_level() == level
        for threads in (1, 2, 3):
            set_num_threads(threads)
            # sizes that hit the 8-block lanes' tails and several chunks
            results.append(_core.random_words(key, S.TEST, 8 * 16 * 300 + 37, offset=9))
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _core.random_words(bytes(31), S.TEST, 4)
    with pytest.raises(TypeError):
        _core.random_words("not bytes", S.TEST, 4)
    with pytest.raises(ValueError, match="n must be >= 0"):
        _core.random_uniform(bytes(32), S.TEST, -1)
    with pytest.raises(ValueError, match="device"):
        _core.random_uniform(bytes(32), S.TEST, 4, device="tpu")
    with pytest.raises(ValueError, match=r"not supported|expected"):
        _core.set_simd_level("avx512")
    with pytest.raises(ValueError, match=">= 1"):
        set_num_threads(0)
    assert _core.random_words(bytes(32), S.TEST, 0).size == 0


def test_secret_not_in_error_messages() -> None:
    secret = bytes(range(100, 131))  # 31 bytes: invalid
    with pytest.raises(ValueError) as info:
        _core.random_words(secret, S.TEST, 4)
    assert secret.hex() not in str(info.value) and repr(secret) not in str(info.value)
