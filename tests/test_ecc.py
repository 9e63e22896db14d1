"""Payload ECC (csrc/core/ecc.*): CRC-32C + K=7 rate-1/3 convolutional code, soft-decision Viterbi.

Soft convention: soft > 0 favours coded bit 1, |soft| is the confidence, 0 is an erasure.
The full figures (100,000-trial rates, timing) come from benchmarks/ecc_figures.py and live in docs/ecc.md.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from provmark import _core

SIZES = list(range(16, 257, 8))
POLYS = (0o133, 0o171, 0o165)
CRC_BITS = 32
TAIL_BITS = 6


# ---- Python reference of the codeword format (twin of provmark::ecc::encode, csrc/core/ecc.cpp) ----
def ref_crc32c(data: bytes) -> int:
    """Bitwise CRC-32C (reflected poly 0x82F63B78, init/xorout 0xFFFFFFFF); twin of provmark::ecc::crc32c."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def ref_encode(payload: bytes) -> np.ndarray:
    """Reference encoder; twin of provmark::ecc::encode (C++).

    info = payload bits (byte 0 first, MSB first) + CRC-32C (MSB first) + 6 zero tail bits;
    coded[3t + j] = parity(reg_t & POLYS[j]), reg_t holding u[t] in bit 0 and u[t-6] in bit 6.
    """
    bits = [(b >> k) & 1 for b in payload for k in range(7, -1, -1)]
    crc = ref_crc32c(payload)
    bits += [(crc >> k) & 1 for k in range(CRC_BITS - 1, -1, -1)]
    bits += [0] * TAIL_BITS
    out = []
    reg = 0
    for u in bits:
        reg = ((reg << 1) | u) & 0x7F
        out += [bin(reg & p).count("1") & 1 for p in POLYS]
    return np.array(out, dtype=np.uint8)


def to_soft(coded: np.ndarray) -> np.ndarray:
    return coded.astype(np.float32) * 2.0 - 1.0


def flip_and_erase(rng, coded, flip, erase):
    soft = to_soft(coded)
    soft[rng.random(soft.size) < flip] *= -1.0
    soft[rng.random(soft.size) < erase] = 0.0
    return soft


def test_reference_crc32c_check_value():
    assert ref_crc32c(b"123456789") == 0xE3069283


def test_coded_length():
    for bits in SIZES:
        assert _core.ecc_coded_length(bits) == (bits + CRC_BITS + TAIL_BITS) * 3
    assert _core.ecc_coded_length(64) == 306


@pytest.mark.parametrize("bits", SIZES)
def test_round_trip_all_sizes(bits):
    rng = np.random.default_rng(bits)
    for _ in range(20):
        payload = rng.integers(0, 256, bits // 8, dtype=np.uint8).tobytes()
        coded = _core.ecc_encode(payload)
        assert coded.dtype == np.uint8
        assert coded.shape == (_core.ecc_coded_length(bits),)
        np.testing.assert_array_equal(coded, ref_encode(payload))
        decoded, confidence = _core.ecc_decode(to_soft(coded), bits)
        assert decoded == payload
        assert confidence == pytest.approx(1.0)
        # Scale does not matter: confidence values only weight the metric.
        decoded, confidence = _core.ecc_decode(to_soft(coded) * 0.01, bits)
        assert decoded == payload
        assert confidence == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [1e-38, 1e-30, 1e30, 3e38])
def test_extreme_scales_decode(scale):
    # The decoder rescales by a power of two internally: no overflow, denormal trouble or sentinel clash.
    rng = np.random.default_rng(9)
    payload = b"scale-ok"
    soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.05, 0.2)
    expected = _core.ecc_decode(soft, 64)
    assert expected[0] == payload
    scaled = (soft.astype(np.float64) * scale).astype(np.float32)
    assert np.isfinite(scaled).all()
    decoded, confidence = _core.ecc_decode(scaled, 64)
    assert decoded == payload
    assert confidence == pytest.approx(expected[1], rel=1e-5)


def test_edge_payloads_round_trip():
    for payload in (bytes(8), b"\xff" * 8, bytes(2), b"\xff" * 32, bytes(range(32))):
        decoded, _ = _core.ecc_decode(to_soft(_core.ecc_encode(payload)), 8 * len(payload))
        assert decoded == payload


def test_all_erased_or_empty_input_gives_no_payload():
    n = _core.ecc_coded_length(64)
    assert _core.ecc_decode(np.zeros(n, np.float32), 64) == (None, 0.0)


def test_viterbi_is_maximum_likelihood_for_16_bits():
    """Exhaustive check of the decoder against all 2^16 valid codewords.

    The code is affine over GF(2) (CRC with init/xorout, linear convolutional code), so every codeword is
    c0 xor (p @ G mod 2) with G built from unit payloads. Viterbi searches every terminated trellis path, a
    superset of the valid codewords: when its path passes the CRC it must be the valid codeword of maximum
    correlation; when it fails, its metric must be at least that maximum.
    """
    bits = 16
    n = _core.ecc_coded_length(bits)
    c0 = _core.ecc_encode(bytes(2)).astype(np.int64)
    gen = np.empty((bits, n), dtype=np.int64)
    for k in range(bits):
        unit = (1 << (bits - 1 - k)).to_bytes(2, "big")
        gen[k] = _core.ecc_encode(unit) ^ c0
    payload_bits = (np.arange(1 << bits)[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    codewords = ((payload_bits @ gen) % 2) ^ c0  # [65536, n]
    signs = (codewords * 2 - 1).astype(np.float32)
    # Spot-check the affine construction against the encoder itself.
    for p in (0x1234, 0xBEEF, 0xFFFF):
        np.testing.assert_array_equal(codewords[p], _core.ecc_encode(p.to_bytes(2, "big")))

    rng = np.random.default_rng(7)
    n_ok = n_fail = 0
    for trial in range(60):
        truth = int(rng.integers(0, 1 << bits))
        sigma = (0.8, 1.2, 2.0)[trial % 3]
        soft = (signs[truth] + rng.normal(0.0, sigma, n)).astype(np.float32)
        corr = signs @ soft
        best = int(np.argmax(corr))
        decoded, confidence = _core.ecc_decode(soft, bits)
        metric = confidence * float(np.abs(soft).sum())
        if decoded is not None:
            n_ok += 1
            assert int.from_bytes(decoded, "big") == best
            assert metric == pytest.approx(float(corr[best]), rel=1e-4)
        else:
            n_fail += 1
            assert metric >= float(corr[best]) - 1e-3 * float(np.abs(soft).sum())
    assert n_ok > 10 and n_fail > 0  # both branches were exercised


def test_list_decoding_returns_the_best_valid_codeword_for_16_bits():
    """CRC-aided list Viterbi against all 2^16 valid codewords: the list holds trellis paths in order of
    metric, so the first one that passes the CRC is the valid codeword of maximum correlation. At noise where
    plain Viterbi often fails, the list must find that codeword in more trials, and never another one."""
    bits = 16
    n = _core.ecc_coded_length(bits)
    c0 = _core.ecc_encode(bytes(2)).astype(np.int64)
    gen = np.stack([_core.ecc_encode((1 << (bits - 1 - k)).to_bytes(2, "big")) ^ c0 for k in range(bits)])
    payload_bits = (np.arange(1 << bits)[:, None] >> np.arange(bits - 1, -1, -1)) & 1
    signs = ((((payload_bits @ gen) % 2) ^ c0) * 2 - 1).astype(np.float32)
    rng = np.random.default_rng(11)
    plain = listed = 0
    for _ in range(80):
        truth = int(rng.integers(0, 1 << bits))
        soft = (signs[truth] * 0.55 + rng.normal(0.0, 1.0, n)).astype(np.float32)
        best = int(np.argmax(signs @ soft))
        d1, _ = _core.ecc_decode(soft, bits)
        d, confidence, checked, rank = _core.ecc_decode_list(soft, bits, 32)
        plain += d1 is not None
        if d1 is not None:  # the Viterbi path passed: no list was needed
            assert (d, checked, rank) == (d1, 1, 0)
        if d is not None:
            listed += 1
            assert int.from_bytes(d, "big") == best
            assert confidence == pytest.approx(float(signs[best] @ soft) / float(np.abs(soft).sum()), rel=1e-4)
            assert 1 <= checked <= 33 and 0 <= rank <= 31
        else:
            assert checked == 33  # the Viterbi path, then all 32 paths of the list
    assert listed > plain + 5, (plain, listed)


def test_list_decoding_gain_and_no_false_accepts_for_64_bits():
    rng = np.random.default_rng(3)
    n = _core.ecc_coded_length(64)
    plain = listed = 0
    for _ in range(60):
        payload = rng.bytes(8)
        soft = (to_soft(_core.ecc_encode(payload)) * 0.8 + rng.normal(0.0, 1.0, n)).astype(np.float32)
        d1, _ = _core.ecc_decode(soft, 64)
        d, _, _, _ = _core.ecc_decode_list(soft, 64, 64)
        plain += d1 == payload
        listed += d == payload
        assert d in (None, payload)
    assert listed > plain + 10, (plain, listed)  # measured: about 43 % -> 85 % at this noise (docs/ecc.md)
    for _ in range(100):  # pure noise: every path checked, none passes (each check: 2^-32)
        d, _, checked, _ = _core.ecc_decode_list(rng.normal(size=n).astype(np.float32), 64, 64)
        assert d is None and checked == 65


def test_payload_decode_list_api():
    from provmark.payload import LIST_SIZE, Payload

    p = Payload(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert Payload.decode_list(to_soft(p.encode())) == (p, 1)
    got, checked = Payload.decode_list(np.zeros(Payload.coded_length(), np.float32))
    assert got is None and checked == LIST_SIZE + 1
    assert Payload.decode_list(to_soft(p.encode()), list_size=1) == (p, 1)
    for bad in (0, 257):
        with pytest.raises(ValueError, match="list_size"):
            Payload.decode_list(to_soft(p.encode()), list_size=bad)
    with pytest.raises(TypeError, match="list_size"):
        Payload.decode_list(to_soft(p.encode()), list_size=True)
    with pytest.raises(ValueError, match="finite"):
        Payload.decode_list(np.full(Payload.coded_length(), np.nan, np.float32))
    with pytest.raises(ValueError, match="expected 306"):
        _core.ecc_decode_list(np.zeros(305, np.float32), 64, 8)


def test_five_percent_sign_flips_decode():
    # Hard +-1 soft values, so flipped bits carry full confidence (the worst case for a given flip rate).
    rng = np.random.default_rng(1)
    ok = 0
    for _ in range(200):
        payload = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.05, 0.0)
        decoded, _ = _core.ecc_decode(soft, 64)
        assert decoded in (None, payload)
        ok += decoded == payload
    assert ok >= 198  # measured 99.980% over 100,000 trials (docs/ecc.md)


def test_twenty_percent_erasures_decode():
    rng = np.random.default_rng(2)
    ok = 0
    for _ in range(200):
        payload = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.0, 0.20)
        decoded, _ = _core.ecc_decode(soft, 64)
        assert decoded in (None, payload)
        ok += decoded == payload
    assert ok >= 198  # measured 100.000% over 100,000 trials (docs/ecc.md)


def test_flips_and_erasures_together_decode():
    rng = np.random.default_rng(3)
    ok = 0
    for _ in range(200):
        payload = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.05, 0.20)
        decoded, _ = _core.ecc_decode(soft, 64)
        assert decoded in (None, payload)
        ok += decoded == payload
    assert ok >= 190  # measured 99.095% over 100,000 trials (docs/ecc.md)


def test_random_and_corrupted_inputs_never_yield_a_wrong_payload():
    rng = np.random.default_rng(4)
    n = _core.ecc_coded_length(64)
    wrong = recovered = 0
    confidences = []
    for trial in range(2000):
        payload = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        if trial % 2 == 0:
            soft = rng.normal(0.0, 1.0, n).astype(np.float32)  # pure noise: nothing is embedded
            decoded, confidence = _core.ecc_decode(soft, 64)
            wrong += decoded is not None
            confidences.append(confidence)
        else:
            # Corrupted beyond what the code corrects (25-40% sign flips): the right payload or nothing.
            soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.25 + 0.15 * rng.random(), 0.0)
            decoded, _ = _core.ecc_decode(soft, 64)
            wrong += decoded is not None and decoded != payload
            recovered += decoded == payload
    assert wrong == 0
    # The Viterbi path of pure noise still agrees with it somewhat (measured mean ~0.70), but far from 1.
    assert 0.5 < float(np.mean(confidences)) < 0.8
    assert max(confidences) < 0.9


def test_confidence_falls_with_corruption():
    rng = np.random.default_rng(5)
    payload = b"provmark"
    coded = _core.ecc_encode(payload)
    means = []
    for flip in (0.0, 0.05, 0.10):
        confs = [_core.ecc_decode(flip_and_erase(rng, coded, flip, 0.0), 64)[1] for _ in range(50)]
        means.append(float(np.mean(confs)))
    assert means[0] == pytest.approx(1.0)
    assert means[0] > means[1] > means[2]


def test_float64_and_strided_inputs_match_float32():
    rng = np.random.default_rng(6)
    payload = b"\x01\x23\x45\x67\x89\xab\xcd\xef"
    soft = flip_and_erase(rng, _core.ecc_encode(payload), 0.05, 0.1) * rng.random(306).astype(np.float32)
    expected = _core.ecc_decode(soft, 64)
    assert expected[0] == payload
    assert _core.ecc_decode(soft.astype(np.float64), 64) == expected
    strided = np.zeros(2 * soft.size, np.float32)
    strided[::2] = soft
    assert _core.ecc_decode(strided[::2], 64) == expected
    assert _core.ecc_decode(soft.astype(">f4"), 64) == expected


def test_decode_is_thread_safe():
    rng = np.random.default_rng(8)
    cases = []
    for _ in range(16):
        payload = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        cases.append((flip_and_erase(rng, _core.ecc_encode(payload), 0.06, 0.1), payload))
    expected = [_core.ecc_decode(s, 64) for s, _ in cases]
    results: dict[int, list] = {}

    def work(tid):
        results[tid] = [_core.ecc_decode(s, 64) for _ in range(20) for s, _ in cases]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for tid in range(4):
        assert results[tid] == expected * 20


@pytest.mark.parametrize("bits", [0, 8, 12, 17, 264, 1024, -8])
def test_bad_payload_bits(bits):
    with pytest.raises(ValueError, match="payload_bits must be a multiple of 8 in \\[16, 256\\]"):
        _core.ecc_coded_length(bits)
    with pytest.raises(ValueError, match="payload_bits"):
        _core.ecc_decode(np.zeros(306, np.float32), bits)


@pytest.mark.parametrize("payload", [b"", b"\x01", bytes(33)])
def test_encode_bad_length(payload):
    with pytest.raises(ValueError, match="payload must be 2 to 32 bytes"):
        _core.ecc_encode(payload)


def test_encode_bad_type():
    with pytest.raises(TypeError):
        _core.ecc_encode("not bytes")
    with pytest.raises(TypeError):
        _core.ecc_encode(12345)


def test_decode_bad_inputs():
    n = _core.ecc_coded_length(64)
    with pytest.raises(ValueError, match="expected 306 soft values for 64 payload bits, got 305"):
        _core.ecc_decode(np.zeros(n - 1, np.float32), 64)
    with pytest.raises(ValueError, match="expected 162 soft values"):
        _core.ecc_decode(np.zeros(n, np.float32), 16)
    with pytest.raises(ValueError, match="1-D"):
        _core.ecc_decode(np.zeros((2, n), np.float32), 64)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.ecc_decode(np.zeros(n, np.int32), 64)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.ecc_decode(np.zeros(n, np.float16), 64)
    with pytest.raises(TypeError, match="numpy"):
        _core.ecc_decode([0.0] * n, 64)
    bad = np.zeros(n, np.float32)
    bad[17] = np.nan
    with pytest.raises(ValueError, match="index 17 is not finite"):
        _core.ecc_decode(bad, 64)
    bad[17] = np.inf
    with pytest.raises(ValueError, match="not finite"):
        _core.ecc_decode(bad, 64)
