"""The native audio core (csrc/core/audio_*) against its NumPy reference (python/provmark/audio.py).

Every test draws fresh random inputs (the seed is in the assertion message): the batched mixed-radix FFT
against numpy.fft, the embedder (every rate, 1-3 channels, every sample dtype, both SIMD levels) against
the NumPy engine, the detector's spectra / projections / weights / phase statistics against the NumPy
analysis, cross-detection of the two engines' marks, and the bindings' argument checks.
"""

from __future__ import annotations

import contextlib
import os
import secrets

import numpy as np
import pytest

import provmark.audio as A
from provmark import Key, _core
from test_audio import music_like  # tests/ is on pytest's pythonpath


def _kernel_sets() -> list[str]:
    """Audio kernel sets this CPU runs: baseline, avx2 (4 lanes) and avx512 (8 lanes, at the avx2 level)."""
    sets = ["baseline"]
    if _core.simd_level_supported() == "avx2":
        sets.append("avx2")
        with simd("avx512"):
            if _core.audio_kernel_isa() == "avx512":
                sets.append("avx512")
    return sets


@contextlib.contextmanager
def simd(kernels: str):
    """Select an audio kernel set; restores the SIMD level and PROVMARK_AUDIO_AVX512 afterwards."""
    old_level, old_env = _core.simd_level(), os.environ.get("PROVMARK_AUDIO_AVX512")
    _core.set_simd_level("baseline" if kernels == "baseline" else "avx2")
    os.environ["PROVMARK_AUDIO_AVX512"] = "1" if kernels == "avx512" else "0"
    try:
        yield
    finally:
        _core.set_simd_level(old_level)
        if old_env is None:
            os.environ.pop("PROVMARK_AUDIO_AVX512", None)
        else:
            os.environ["PROVMARK_AUDIO_AVX512"] = old_env


LEVELS = _kernel_sets()


def fresh_rng() -> tuple[np.random.Generator, int]:
    seed = secrets.randbits(32)
    return np.random.default_rng(seed), seed


def noisy_music(rng: np.random.Generator, rate: int, seconds: float, channels: int) -> np.ndarray:
    """Random tones with random envelopes over coloured noise, a silent gap, peak 0.7: [C, n] float64."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = np.zeros((channels, n))
    for _ in range(12):
        f = rng.uniform(80, 0.4 * rate)
        env = np.exp(-((t - rng.uniform(0, seconds)) ** 2) / rng.uniform(0.05, 1.0))
        x += rng.uniform(0.05, 0.3) * env * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))[None]
    noise = np.cumsum(rng.normal(0, 1, (channels, n)), axis=1)
    noise -= np.convolve(noise[0], np.ones(64) / 64, mode="same")[None]
    x += 0.01 * noise / (np.abs(noise).max() + 1e-12)
    gap = int(rng.uniform(0.2, 0.6) * n)
    x[:, gap : gap + rate // 5] = 0.0
    return 0.7 * x / np.abs(x).max()


# ---- FFT ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
def test_fft_matches_numpy(level):
    rng, seed = fresh_rng()
    sizes = [2 * A.hop_length(r) for r in A.SUPPORTED_RATES] + [2, 3, 5, 7, 11, 13, 77, 121, 2 * 3 * 5 * 7]
    with simd(level):
        assert _core.audio_kernel_isa() == level
        for n in sizes:
            count = int(rng.integers(1, 10))  # lane tails: counts that are not a multiple of the batch
            x = rng.normal(size=(count, n)) + 1j * rng.normal(size=(count, n))
            ref = np.fft.fft(x, axis=1)
            got = _core.audio_fft(x)
            err = np.abs(got - ref).max() / np.abs(ref).max()
            assert err < 1e-13 * np.log2(n + 1), f"n={n} level={level} seed={seed}: rel err {err:.2e}"


def test_fft_rejects_bad_input():
    with pytest.raises(TypeError, match="complex128"):
        _core.audio_fft(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="prime factor"):
        _core.audio_fft(np.zeros((1, 37), dtype=np.complex128))
    with pytest.raises(ValueError, match="2 dimensions"):
        _core.audio_fft(np.zeros(8, dtype=np.complex128))


# ---- embedding ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", A.SUPPORTED_RATES)
def test_embed_matches_numpy_every_rate(rate):
    rng, seed = fresh_rng()
    channels = int(rng.integers(1, 4))
    x = noisy_music(rng, rate, float(rng.uniform(1.0, 3.0)), channels)
    coded = A._payload_bits(int(rng.integers(0, 2**63)))[1]
    kb = secrets.token_bytes(32)
    strength = float(rng.choice([1.0, rng.uniform(0.3, 1.0)]))
    ref = A._embed_array(x, rate, coded, kb, strength, impl="numpy")
    for level in LEVELS:
        with simd(level):
            got = A._embed_array(x, rate, coded, kb, strength, impl="native")
        delta = np.abs(ref - x).max()
        err = np.abs(got - ref).max()
        assert delta > 1e-4, f"seed={seed}: no mark at all"
        # rounding differences only (measured up to ~3e-9 of the largest change); a cell quantised to another
        # lattice point, or a different gain, would move the output by a sizeable fraction of the change
        assert err <= 1e-7 * delta, f"rate={rate} C={channels} level={level} seed={seed}: {err:.2e} vs {delta:.2e}"


def test_budget_is_the_measured_snr():
    """The budget counts the energy of each cell's synthesised change against the signal's own energy, so
    where it binds (white noise, at two rates and channel counts) the measured SNR sits on the budget within
    the cross terms of adjacent cells (one shared hop), and elsewhere (music-like audio) above it."""
    rng = np.random.default_rng(7)
    lay = A.DEFAULT_LAYOUT
    cases = [
        (44100, 0.1 * rng.standard_normal((2, 8 * 44100)), True),
        (8000, rng.standard_normal((1, 8 * 8000)), True),
        (44100, music_like(44100, 8.0, channels=2, seed=3), False),
    ]
    for rate, x, binds in cases:
        for impl in ("numpy", "native"):
            y = A._embed_array(x, rate, A._payload_bits(12345)[1], bytes(range(32)), 1.0, impl=impl)
            snr = 10 * np.log10(np.sum(x * x) / np.sum((y - x) ** 2))
            assert snr >= lay.snr_db - 0.15, (rate, impl, snr)
            if binds:
                assert snr < lay.snr_db + 0.5, (rate, impl, snr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_public_embed_dtypes_match_numpy(dtype):
    """The one-shot native path reads and writes the caller's dtype itself (clip, int16 rounding)."""
    rng, seed = fresh_rng()
    rate = int(rng.choice(A.SUPPORTED_RATES))
    x = noisy_music(rng, rate, 2.0, 2)
    x[0, 100:140] = 0.999  # near full scale: the mark pushes some samples past it, output clips
    xi = (x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)
    key = Key.generate()
    ref = A._embed(xi, rate, 99, key, impl="numpy")
    got = A._embed(xi, rate, 99, key, impl="native")
    assert got.dtype == ref.dtype == xi.dtype and got.shape == ref.shape == xi.shape
    # float32: one ulp at full scale; int16: one step; float64: rounding, relative to the largest change
    tol = {np.float32: 1.2e-7, np.float64: 1e-7 * np.abs(ref.astype(np.float64) - xi).max(), np.int16: 1}[dtype]
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()
    assert err <= tol, f"dtype={dtype.__name__} rate={rate} seed={seed}: {err}"
    if dtype != np.int16:
        assert np.abs(got).max() <= 1.0
    mono = A._embed(xi[0], rate, 99, key, impl="native")
    assert mono.shape == xi[0].shape


def test_streaming_native_equals_numpy_streaming():
    rng, seed = fresh_rng()
    rate = int(rng.choice(A.SUPPORTED_RATES))
    x = noisy_music(rng, rate, 2.5, 2)
    coded = A._payload_bits(7)[1]
    kb = secrets.token_bytes(32)
    outs = {}
    for impl in ("numpy", "native"):
        st = A._EmbedState(rate, 2, coded, kb, 1.0, impl=impl)
        r = np.random.default_rng(seed)
        parts, i = [], 0
        while i < x.shape[1]:
            k = int(r.integers(1, rate))
            parts.append(st.push(x[:, i : i + k].copy()))
            i += k
        parts.append(st.flush())
        outs[impl] = np.concatenate(parts, axis=1)
    one_shot = A._embed_array(x, rate, coded, kb, 1.0, impl="native")
    assert outs["native"].shape == x.shape
    assert np.array_equal(outs["native"], one_shot), f"seed={seed}"
    assert np.abs(outs["native"] - outs["numpy"]).max() <= 1e-7 * np.abs(outs["numpy"] - x).max(), f"seed={seed}"


def test_embed_core_state_and_checks():
    rate, h = 16000, A.hop_length(16000)
    coded = A._payload_bits(3)[1]
    st = A._EmbedState(rate, 2, coded, secrets.token_bytes(32), 1.0, impl="native")
    core = st.native
    x = np.random.default_rng().normal(0, 0.1, (2, 4 * h * 5 + h))
    out = core.run(x, 5)
    assert out.shape == (2, 4 * h * 5) and core.t_next == 5 and core.bucket >= 0.0
    assert core.acc.shape == (2, h)
    with pytest.raises(ValueError, match="need"):
        core.run(x, 6)  # one cell more than x holds
    with pytest.raises(ValueError, match="channels"):
        core.run(x[:1], 1)
    with pytest.raises(TypeError, match="float64, float32 or int16"):
        core.run(x.astype(np.int32), 1)
    with pytest.raises(ValueError, match="overlap"):
        core.run(x, 1, x)
    with pytest.raises(ValueError, match="out must be"):
        core.run(x, 2, np.empty((2, 4 * h)))
    with pytest.raises(ValueError, match="ncells"):
        core.run(x, -1)
    t = st.tables
    good = dict(
        channels=2,
        hop=h,
        cell_hops=4,
        edges=st.edges.astype(np.int32),
        chips=t.chips,
        dither=t.dither,
        bits=st.bits.astype(np.int8),
        ng=st.ng,
        step=0.6,
        gamma=1.0,
        cap=0.7,
        alpha=1.0,
        snr_db=30.5,
        local_snr_db=24.0,
        leak=0.96,
        floor=1e-10,
    )
    _core.AudioEmbedCore(**good)
    bad = [
        ({"edges": st.edges.astype(np.int64)}, TypeError, "int32"),
        ({"edges": np.array([5, 4, 9, 10, 11], dtype=np.int32)}, ValueError, "edges"),
        ({"edges": (st.edges + h).astype(np.int32)}, ValueError, "edges"),
        ({"bits": np.full_like(st.bits, 2, dtype=np.int8)}, ValueError, "0/1"),
        ({"dither": t.dither[:, :2].copy()}, ValueError, r"\[T, G\]"),
        ({"ng": 99}, ValueError, "ng"),
        ({"channels": 0}, ValueError, "channels"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"step": float("nan")}, ValueError, "finite"),
        ({"chips": t.chips[:, :3].copy()}, ValueError, "L even"),
    ]
    for change, exc, match in bad:
        with pytest.raises(exc, match=match):
            _core.AudioEmbedCore(**{**good, **change})


# ---- detection ------------------------------------------------------------------------------------------
def test_analysis_projections_and_fold_match_numpy():
    rng, seed = fresh_rng()
    rate = int(rng.choice(A.SUPPORTED_RATES))
    channels = int(rng.integers(1, 4))
    lay = A.DEFAULT_LAYOUT
    kb = secrets.token_bytes(32)
    x = A._embed_array(noisy_music(rng, rate, 7.0, channels), rate, A._payload_bits(5)[1], kb, 1.0)
    shift = int(rng.integers(0, A.hop_length(rate)))
    xs = x[:, shift:]  # a row view, as the sub-hop refinement passes it
    ref = A._Analysis(xs, rate, lay, 1.06)
    for level in LEVELS:
        with simd(level):
            nat = A._NativeAnalysis(xs, rate, lay, 1.06)
        assert nat.cs.shape == ref.cs.shape
        assert np.abs(nat.cs - ref.cs).max() <= 1e-12 * np.abs(ref.cs).max(), f"seed={seed}"
    tables = A._tables(kb, lay, 306)
    ng = lay.groups_for_rate(rate)
    for speed in (1.0, *rng.uniform(0.95, 1.05, 3)):
        p1, w1 = ref.projections(speed, ng, tables)
        p2, w2 = nat.projections(speed, ng, tables)
        msg = f"rate={rate} C={channels} speed={speed} seed={seed}"
        assert p1.shape == p2.shape, msg
        # rounding only, but amplified: a band energy is a difference of cumulated powers (absolute error
        # ~1e-16 of the frame's total) and its log is taken next to a floor of 4e-10 N, so silent cells
        # beside loud ones reach ~1e-5 (measured 3e-6); the quantiser step is 0.6
        assert np.abs(p1 - p2).max() < 1e-4, msg
        assert np.abs(w1 - w2).max() < 1e-4, msg
        z1, term1 = ref.scores(p1, w1, tables, ng)
        z2, term2 = nat.scores(p2, w2, tables, ng)
        assert np.abs(z1 - z2).max() < 1e-3, msg
        for m in (0, int(np.argmax(z1)), int(rng.integers(0, lay.block_hops))):
            assert np.abs(term1(m) - term2(m)).max() < 1e-3, msg


def test_phase_term_and_band_energy_match_the_fold():
    """_phase_term (the noise-model decoding's single-phase fold) equals the native fold's term(m), and the
    native analysis's band energies equal the NumPy analysis's at speeds around 1."""
    rng = np.random.default_rng(5)
    lay = A.DEFAULT_LAYOUT
    tables = A._tables(bytes(32), lay, 306)
    ng = lay.groups_for_rate(44100)
    for secs, speed in ((7.0, 1.0), (10.3, 1.02), (3.0, 0.98)):
        x = 0.1 * rng.standard_normal((1, int(44100 * secs)))
        an = A._NativeAnalysis(x, 44100, lay)
        np.testing.assert_allclose(an.band_energy(speed), A._Analysis(x, 44100, lay).band_energy(speed), rtol=1e-9)
        p, w = an.projections(speed, ng, tables)
        _z, term = an.scores(p, w, tables, ng)
        for m in range(0, lay.block_hops, 7):
            np.testing.assert_allclose(A._phase_term(p, w, m, tables, ng, lay), term(m), rtol=0, atol=1e-12)


def test_native_and_numpy_marks_cross_detect():
    rng, seed = fresh_rng()
    rate = int(rng.choice([16000, 22050, 44100]))
    x = music_like(rate, 11.0, 2, seed=int(rng.integers(0, 2**31)))
    key = Key.generate()
    payload = int(rng.integers(0, 2**63))
    results = {}
    for emb in ("numpy", "native"):
        y = A._embed(x, rate, payload, key, impl=emb)
        for det in ("numpy", "native"):
            d = A._detect(y, rate, key, fpr=1e-6, speed_search=False, impl=det)
            assert d.found and d.payload == payload.to_bytes(8, "big"), f"{emb}->{det} seed={seed}: {d}"
            results[emb, det] = d
    for emb in ("numpy", "native"):
        a, b = results[emb, "numpy"], results[emb, "native"]
        assert a.details["offset_s"] == pytest.approx(b.details["offset_s"]), f"seed={seed}"
        assert a.score == pytest.approx(b.score, rel=1e-6), f"seed={seed}"
        assert np.allclose(a.details["segments"], b.details["segments"], rtol=1e-6, atol=1e-6), f"seed={seed}"
    d0 = A._detect(x, rate, key, fpr=1e-6, speed_search=False, impl="numpy")
    d1 = A._detect(x, rate, key, fpr=1e-6, speed_search=False, impl="native")
    assert not d0.found and not d1.found
    assert d0.score == pytest.approx(d1.score, rel=1e-6, abs=1e-9), f"seed={seed}"


def test_detect_bindings_reject_bad_input():
    x = np.zeros((2, 4000))
    with pytest.raises(TypeError, match="float64"):
        _core.audio_analysis(x.astype(np.float32), 80, 40)
    with pytest.raises(ValueError, match="top"):
        _core.audio_analysis(x, 80, 500)
    with pytest.raises(ValueError, match="channels"):
        _core.audio_analysis(np.zeros((17, 4000)), 80, 40)
    with pytest.raises(ValueError, match="contiguous"):
        _core.audio_analysis(np.zeros((4000, 2)).T, 80, 40)
    cs = _core.audio_analysis(x, 80, 41)
    assert cs.shape == ((4000 - 160) // 80 + 1, 42)
    chips = np.array([[1.0, -1.0, 1.0, -1.0]])
    edges = np.array([5, 7, 9, 12, 15], dtype=np.int32)
    p, w = _core.audio_projections(cs, edges, chips, 1, 4, 1e-6, 1.0, 0.0, 0.6)
    assert p.shape == w.shape == (cs.shape[0] - 3, 1)
    with pytest.raises(ValueError, match="edges"):
        _core.audio_projections(cs, np.array([5, 7, 9, 12, 60], dtype=np.int32), chips, 1, 4, 1e-6, 1.0, 0.0, 0.6)
    with pytest.raises(ValueError, match="speed"):
        _core.audio_projections(cs, edges, chips, 1, 4, 1e-6, 3.0, 0.0, 0.6)
    with pytest.raises(ValueError, match="ng"):
        _core.audio_projections(cs, edges, chips, 2, 4, 1e-6, 1.0, 0.0, 0.6)
    dither = np.zeros((3, 1))
    fc, fs, z = _core.audio_fold(p, w, dither, np.ones((3, 1)), 0.6, 4)
    assert fc.shape == fs.shape == (12, 1) and z.shape == (12,)
    with pytest.raises(ValueError, match="shape of p"):
        _core.audio_fold(p, w[:-1].copy(), dither, np.ones((3, 1)), 0.6, 4)
    with pytest.raises(ValueError, match="step"):
        _core.audio_fold(p, w, dither, np.ones((3, 1)), 0.0, 4)
    with pytest.raises(ValueError, match="dither and sign"):
        _core.audio_fold(p, w, dither, np.ones((2, 1)), 0.6, 4)


def test_non_contiguous_inputs():
    """Fortran-ordered arrays and transposed views go through every public path (the core reads rows)."""
    rng, seed = fresh_rng()
    rate = 16000
    x = music_like(rate, 11.0, 2, seed=int(rng.integers(0, 2**31)))
    key = Key.generate()
    for variant in (np.asfortranarray(x), np.ascontiguousarray(x.T).T, np.asfortranarray(x.astype(np.float64))):
        ref = A.embed(np.ascontiguousarray(variant), rate, 5, key)
        y = A.embed(variant, rate, 5, key)
        assert y.dtype == ref.dtype and np.array_equal(y, ref), f"seed={seed}"
        det = A.detect(np.asfortranarray(y), rate, key)
        assert det.payload == (5).to_bytes(8, "big"), f"seed={seed}"
        emb = A.StreamEmbedder(rate, 2, 5, key)
        out = np.concatenate([emb.push(variant[:, :7000]), emb.push(variant[:, 7000:]), emb.flush()], axis=1)
        assert np.array_equal(out, ref), f"seed={seed}"


def test_stream_embedder_mixed_dtypes_match_numpy():
    """The native StreamEmbedder reads each chunk in its own dtype (int16 = value / 32768); a change of dtype
    mid-stream continues in float64. Output: the first chunk's dtype, as with the NumPy engine."""
    rng, seed = fresh_rng()
    rate = 16000
    x = music_like(rate, 4.0, 2, seed=int(rng.integers(0, 2**31))).astype(np.float64)
    x16 = np.round(x * 32767).astype(np.int16)
    key = Key.generate()
    cuts = sorted(int(c) for c in rng.integers(1, x.shape[1], 3))
    outs = {}
    for impl in ("numpy", "native"):
        emb = A.StreamEmbedder(rate, 2, 11, key)
        emb._state = A._EmbedState(rate, 2, A._payload_bits(11)[1], A._key_bytes(key), 1.0, impl=impl)
        parts = [
            emb.push(x[:, : cuts[0]].astype(np.float32)),
            emb.push(x[:, cuts[0] : cuts[1]]),
            emb.push(x16[:, cuts[1] : cuts[2]]),
            emb.push(x[:, cuts[2] :].astype(np.float32)),
            emb.flush(),
        ]
        assert all(p.dtype == np.float32 for p in parts)
        outs[impl] = np.concatenate(parts, axis=1)
    assert outs["native"].shape == x.shape
    assert np.abs(outs["native"] - outs["numpy"]).max() <= 1.2e-7, f"seed={seed}"


def test_impl_argument_is_checked():
    with pytest.raises(ValueError, match="impl"):
        A._embed(np.zeros(4000, dtype=np.float32), 16000, 1, Key.generate(), impl="cuda")
