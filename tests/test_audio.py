"""provmark.audio: round trips, streaming, keys, a small regression set of attacks, bad input.

Signals are generated here (music-like: notes with harmonics and envelopes over a bass line and a little
noise), so the tests stay offline. The full robustness table on real recordings is
benchmarks/audio_robustness.py (docs/audio.md).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import provmark
import provmark.audio as A
from provmark import Key

KEY = Key.from_bytes(bytes(range(32)))
OTHER = Key.from_bytes(bytes(range(1, 33)))
PAYLOAD = 0x0123456789ABCDEF
PAYLOAD_BYTES = PAYLOAD.to_bytes(8, "big")


def music_like(rate: int, seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Notes (8 harmonics, attack/decay envelope) every 0.2-0.5 s over a bass line, hi-hat-like noise
    bursts on a 0.25 s beat, plus -45 dB noise."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.zeros((channels, n))
    pos = 0
    while pos < n:
        dur = int(rng.uniform(0.2, 0.5) * rate)
        seg = slice(pos, min(n, pos + dur))
        tt = t[seg] - t[pos]
        env = (1 - np.exp(-tt * 60)) * np.exp(-tt * rng.uniform(2, 6))
        f0 = 110 * 2 ** (rng.integers(0, 36) / 12)
        for c in range(channels):
            note = sum(
                np.sin(2 * np.pi * f0 * (k + 1) * tt + rng.uniform(0, 6.28)) / (k + 1)
                for k in range(8)
                if f0 * (k + 1) < 0.45 * rate
            )
            out[c, seg] += 0.25 * env * note * rng.uniform(0.6, 1.0)
        pos += dur
    bass = 0.2 * np.sin(2 * np.pi * 55 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    out += bass[None]
    beat = int(0.25 * rate)
    hat = np.diff(rng.normal(0, 1, (channels, n + 1)), axis=1) * 0.05  # bright noise
    out += hat * np.exp(-(np.arange(n) % beat) / (0.03 * rate))[None]
    out += rng.normal(0, 10 ** (-45 / 20), out.shape)
    out *= 0.8 / np.abs(out).max()
    return out.astype(np.float32)


def _snr(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(y, dtype=np.float64) - x
    return 10 * math.log10(np.sum(x * x) / np.sum(d * d))


@pytest.fixture(scope="module")
def marked44():
    x = music_like(44100, 14.0)
    return x, A.embed(x, 44100, PAYLOAD, KEY)


@pytest.mark.parametrize("rate", A.SUPPORTED_RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_every_rate(rate, channels):
    x = music_like(rate, 11.0, channels=channels, seed=rate + channels)
    if channels == 1:
        x = x[0]
    y = A.embed(x, rate, PAYLOAD, KEY)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert _snr(x, y) >= 30.0
    det = A.detect(y, rate, KEY)
    assert det.found, det
    assert det.payload == PAYLOAD_BYTES
    assert det.p_value < 1e-6
    assert abs(det.details["speed"] - 1.0) < 0.0045  # 22.05 kHz runs 0.2 % off the 100 hop/s grid


def test_unmarked_and_wrong_key_not_found(marked44):
    x, y = marked44
    for sig, key in ((x, KEY), (y, OTHER)):
        det = A.detect(sig, 44100, key)
        assert not det.found
        assert det.payload is None
        assert det.p_value > 1e-6


def test_remarking_with_another_key():
    """Both keys quantise the same band projections, so a second mark overwrites the first (docs/audio.md):
    the second key reads its payload, and the first never reads a wrong one."""
    x = music_like(22050, 14.0, seed=5)
    y = A.embed(A.embed(x, 22050, 1, KEY), 22050, 2, OTHER)
    assert A.detect(y, 22050, OTHER).payload == (2).to_bytes(8, "big")
    assert A.detect(y, 22050, KEY).payload in (None, (1).to_bytes(8, "big"))


def test_null_statistic_respects_its_bound():
    """Unmarked audio: the sync statistic of the best phase never beats the sub-Gaussian bound badly."""
    zs = []
    for seed in range(12):
        x = music_like(16000, 6.0, channels=1, seed=100 + seed)
        det = A.detect(x, 16000, KEY)
        assert not det.found
        zs.append(det.score)
    # best of n_tests phases x speeds: P(z > t) <= n_tests * exp(-t^2 / 2); t = 6 gives < 1e-4 here
    assert max(zs) < 6.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_dtypes_and_torch(dtype):
    x = music_like(16000, 11.0, channels=2, seed=3)
    xi = (x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)
    y = A.embed(xi, 16000, PAYLOAD, KEY)
    assert y.dtype == xi.dtype and y.shape == xi.shape
    assert A.detect(y, 16000, KEY).payload == PAYLOAD_BYTES


def test_torch_tensor_round_trip():
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(music_like(16000, 11.0, channels=1, seed=4)[0])
    y = A.embed(x, 16000, PAYLOAD, KEY)
    assert isinstance(y, torch.Tensor) and y.dtype == x.dtype and tuple(y.shape) == tuple(x.shape)
    assert A.detect(y, 16000, KEY).payload == PAYLOAD_BYTES


def test_streaming_equals_one_shot():
    rate = 16000
    rng = np.random.default_rng(7)
    x = music_like(rate, 3.0, channels=2, seed=7).astype(np.float64)
    ref = A.embed(x, rate, PAYLOAD, KEY)
    emb = A.StreamEmbedder(rate, 2, PAYLOAD, KEY)
    outs, i, pushed, lag = [], 0, 0, 0
    while i < x.shape[1]:
        # chunk sizes from 1 sample to 1 s, many small ones
        c = int(rng.choice([1, 2, 7, 160, 999, int(rng.integers(1, rate + 1))]))
        out = emb.push(x[:, i : i + c])
        outs.append(out)
        i += c
        pushed = min(i, x.shape[1])
        emitted = sum(o.shape[1] for o in outs)
        lag = max(lag, pushed - emitted)
    outs.append(emb.flush())
    y = np.concatenate(outs, axis=1)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12)
    assert lag <= round(emb.latency_s * rate) and emb.latency_s <= 0.050


def test_streaming_mono_int16_and_errors():
    rate = 8000
    x = (music_like(rate, 2.0, channels=1, seed=9)[0] * 32767).astype(np.int16)
    ref = A.embed(x, rate, PAYLOAD, KEY)
    emb = A.StreamEmbedder(rate, 1, PAYLOAD, KEY)
    parts = [emb.push(x[i : i + 333]) for i in range(0, x.size, 333)] + [emb.flush()]
    y = np.concatenate(parts)
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(RuntimeError):
        emb.push(x[:10])
    with pytest.raises(ValueError):
        A.StreamEmbedder(rate, 2, PAYLOAD, KEY).push(x[:100])  # mono chunk for a stereo stream


def test_stream_detector():
    rate = 16000
    x = music_like(rate, 14.0, channels=1, seed=11)[0]
    y = A.embed(x, rate, PAYLOAD, KEY)
    sd = A.StreamDetector(rate, 1, KEY, window_s=12.0)
    for i in range(0, y.size, 4000):
        sd.push(y[i : i + 4000])
    det = sd.result()
    assert det.found and det.payload == PAYLOAD_BYTES


def test_crop_10s_offset(marked44):
    _, y = marked44
    s0 = 44100 * 3 + 1234
    det = A.detect(y[:, s0 : s0 + 10 * 44100], 44100, KEY)
    assert det.payload == PAYLOAD_BYTES
    block = det.details["block_s"]
    # the block that started at 0 in the original starts at (-s0 mod block) in the crop (10 ms grid)
    expect = (-s0 / 44100) % block
    assert min(abs(det.details["offset_s"] - expect), block - abs(det.details["offset_s"] - expect)) < 0.011


def test_mp3_64k_regression(marked44):
    av = pytest.importorskip("av")
    _, y = marked44
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        st = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        st.bit_rate = 64000
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(y), format="fltp", layout="stereo")
        fr.sample_rate = 44100
        for pkt in st.encode(fr):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    buf.seek(0)
    parts = []
    with av.open(buf, "r") as cont:
        res = av.AudioResampler(format="fltp", layout="stereo", rate=44100)
        for frame in cont.decode(audio=0):
            for f in res.resample(frame):
                parts.append(f.to_ndarray())
    z = np.concatenate(parts, axis=1)
    det = A.detect(z, 44100, KEY)
    assert det.found and det.payload == PAYLOAD_BYTES


def test_resample_16k_regression(marked44):
    from scipy.signal import resample_poly

    _, y = marked44
    z = resample_poly(y, 160, 441, axis=1).astype(np.float32)
    det = A.detect(z, 16000, KEY)
    assert det.found and det.payload == PAYLOAD_BYTES


def test_volume_and_speed_regression(marked44):
    from scipy.signal import resample_poly

    _, y = marked44
    assert A.detect(y * 0.5, 44100, KEY).payload == PAYLOAD_BYTES
    fast = resample_poly(y, 100, 102, axis=1).astype(np.float32)  # 2 % faster
    det = A.detect(fast, 44100, KEY)
    assert det.payload == PAYLOAD_BYTES
    assert abs(det.details["speed"] - 1.02) < 0.005


def test_lowpass_4k_regression(marked44):
    """A 4 kHz brick-wall low-pass removes the two upper band groups. Their soft values are then pure noise;
    the decoder weighs each group by its own sync evidence (_group_reliability) and still decodes."""
    _, y = marked44
    spec = np.fft.rfft(y.astype(np.float64), axis=-1)
    spec[..., np.fft.rfftfreq(y.shape[-1], 1 / 44100) > 4000] = 0
    z = np.fft.irfft(spec, n=y.shape[-1], axis=-1).astype(np.float32)
    det = A.detect(z, 44100, KEY)
    assert det.found and det.payload == PAYLOAD_BYTES


def _with_echo(x: np.ndarray, rate: int, delay_s: float, decay: float) -> np.ndarray:
    d = int(delay_s * rate)
    y = x.astype(np.float64).copy()
    y[:, d:] += decay * x[:, :-d]
    return y


def test_echo_estimate_and_inverse():
    x = music_like(44100, 8.0, seed=3).astype(np.float64)
    assert A._echo_estimate(x, 44100) is None  # its 0.25 s beat repeats, but without an echo's dip at 2 d
    for delay_s, decay in ((0.05, 0.3), (0.1, 0.3), (0.15, 0.5), (0.3, 0.4)):
        y = _with_echo(x, 44100, delay_s, decay)
        d, a = A._echo_estimate(y, 44100)
        assert d == int(delay_s * 44100)
        assert abs(a - decay) < 0.08, (delay_s, decay, a)
        np.testing.assert_allclose(A._deecho(y, d, decay), x, atol=1e-9)
    assert A._echo_estimate(_with_echo(x, 44100, 0.1, 0.1), 44100) is None  # weaker than ECHO_MIN_DECAY


def test_echo_regression(monkeypatch):
    """Echo (0.3 decay, 100 ms) smears each cell's energy into the cells 100 ms later; on this clip the mark
    is lost until the last pass undoes the estimated echo."""
    x = music_like(44100, 12.0, seed=1)
    y = _with_echo(A.embed(x, 44100, PAYLOAD, KEY), 44100, 0.1, 0.3)
    det = A.detect(y, 44100, KEY)
    assert det.found and det.payload == PAYLOAD_BYTES
    assert abs(det.details["echo"]["delay_s"] - 0.1) < 1e-3  # decoded by the echo pass
    # unmarked audio with an echo: the second pass runs, finds nothing, and its tests count in the p-value
    u = _with_echo(x, 44100, 0.1, 0.3)
    with_pass = A.detect(u, 44100, KEY)
    monkeypatch.setattr(A, "ECHO_MIN_DECAY", 10.0)
    without = A.detect(u, 44100, KEY)
    assert not with_pass.found and not without.found
    assert with_pass.details["n_tests"] > without.details["n_tests"]
    assert with_pass.p_value >= without.p_value


def test_echo_pass_runs_unless_found():
    """The echo pass runs when the first search found nothing, including a payload that decoded without enough
    sync evidence for fpr (measured: a calmrace window decoded at z 4.0 first, then found at z 10.8 after the
    echo was undone); it counts both searches and keeps the first result unless the second is found."""
    x = _with_echo(music_like(44100, 8.0, seed=3).astype(np.float64), 44100, 0.1, 0.3)
    calls = []

    def run(y, speeds):
        calls.append(speeds)
        return {"best": A._Candidate(1.0, 0, 3.0, None, 0.0, 0, None), "n_tests": 10, "tried": 2}

    weak = {"best": A._Candidate(1.0, 0, 4.0, PAYLOAD_BYTES, 0.9, 0, None), "n_tests": 25920, "tried": 564}
    assert A._p_value(4.0, 25920, True, 564) > 1e-6  # decoded, not found (the measured window's figures)
    r = A._echo_pass(weak, 44100, 1e-6, lambda: x, lambda: x, run)
    assert calls == [(1.0,)] and r["best"] is weak["best"] and (r["n_tests"], r["tried"]) == (25930, 566)
    strong = {"best": A._Candidate(1.0, 0, 12.0, PAYLOAD_BYTES, 1.0, 0, None), "n_tests": 25920, "tried": 564}
    assert A._echo_pass(strong, 44100, 1e-6, lambda: x, lambda: x, run) is strong and len(calls) == 1


def test_group_reliability_weights():
    rng = np.random.default_rng(12)  # fixed: pure-noise groups exceed the t threshold by chance (~0.3 %)
    T, ng = A.DEFAULT_LAYOUT.block_cells, 4
    sync_sign = np.where(rng.random((T, ng)) < 0.15, rng.choice([-1.0, 1.0], (T, ng)), 0.0)
    sync_sign[:4] = 1.0  # at least 4 sync instances per group
    term = rng.normal(0, 1, (T, ng))
    term[:, :2] += 5.0 * np.where(sync_sign != 0, sync_sign, 1.0)[:, :2]  # groups 0, 1 carry the mark
    w = A._group_reliability(term, sync_sign)
    assert w.shape == (ng,)
    assert np.all(w[:2] == 1.0)
    assert np.all(w[2:] < 0.5)
    assert np.all(A._group_reliability(-np.abs(term) * sync_sign, sync_sign) == 1.0)  # no evidence: unweighted


def test_presence_localises_a_splice():
    rate = 16000
    x = music_like(rate, 30.0, channels=1, seed=21)[0]
    y = A.embed(x, rate, PAYLOAD, KEY)
    z = x.copy()
    truth = []
    for i in range(6):
        if i % 2 == 0:
            z[i * 5 * rate : (i + 1) * 5 * rate] = y[i * 5 * rate : (i + 1) * 5 * rate]
        truth += [i % 2 == 0] * 5
    det = A.detect(z, rate, KEY)
    assert det.found
    seg = np.asarray(det.details["segments"])[:30]
    right = np.mean((seg > 3.0) == np.asarray(truth[: seg.size]))
    assert right >= 0.9, seg


def test_clipping_input_stays_in_range():
    x = np.clip(music_like(16000, 11.0, channels=1, seed=2)[0] * 3.0, -1.0, 1.0).astype(np.float32)
    y = A.embed(x, 16000, PAYLOAD, KEY)
    assert np.abs(y).max() <= 1.0
    assert A.detect(y, 16000, KEY).payload == PAYLOAD_BYTES


def test_silence_is_left_silent():
    x = np.zeros((2, 16000 * 3), dtype=np.float32)
    y = A.embed(x, 16000, PAYLOAD, KEY)
    assert np.all(y == 0)
    assert not A.detect(y, 16000, KEY).found


@pytest.mark.parametrize(
    "samples, rate, exc, match",
    [
        (np.zeros(0, np.float32), 16000, ValueError, "empty"),
        (np.zeros((2, 0), np.float32), 16000, ValueError, "empty"),
        (np.zeros(100, np.float32), 16000, ValueError, "at least"),
        (np.full(16000, np.nan, np.float32), 16000, ValueError, "NaN"),
        (np.full(16000, np.inf, np.float64), 16000, ValueError, "NaN"),
        (np.full(16000, 3.0, np.float32), 16000, ValueError, r"\[-1, 1\]"),
        (np.zeros((2, 2, 16000), np.float32), 16000, ValueError, "shape"),
        (np.zeros((0, 16000), np.float32), 16000, ValueError, "channels"),
        (np.zeros(16000, np.int32), 16000, TypeError, "dtype"),
        ([0.0] * 16000, 16000, TypeError, "numpy"),
        (np.zeros(16000, np.float32), 44000, ValueError, "sample_rate"),
        (np.zeros(16000, np.float32), 16000.0, TypeError, "sample_rate"),
    ],
)
def test_bad_input(samples, rate, exc, match):
    with pytest.raises(exc, match=match):
        A.embed(samples, rate, PAYLOAD, KEY)
    with pytest.raises(exc, match=match):
        A.detect(samples, rate, KEY)


def test_bad_arguments():
    x = music_like(16000, 1.0, channels=1)[0]
    with pytest.raises(ValueError, match="strength"):
        A.embed(x, 16000, PAYLOAD, KEY, strength=0.0)
    with pytest.raises(ValueError, match="strength"):
        A.embed(x, 16000, PAYLOAD, KEY, strength=1.5)
    with pytest.raises(TypeError, match="key"):
        A.embed(x, 16000, PAYLOAD, "secret")
    with pytest.raises(ValueError):
        A.embed(x, 16000, provmark.Payload(1, bits=32), KEY)
    with pytest.raises(ValueError, match="fpr"):
        A.detect(x, 16000, KEY, fpr=0.0)
    with pytest.raises(ValueError, match="channels"):
        A.StreamEmbedder(16000, 0, PAYLOAD, KEY)
