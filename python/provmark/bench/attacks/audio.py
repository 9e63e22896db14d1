"""Audio attacks (numpy; scipy and PyAV imported when needed; Vorbis through the ``ffmpeg`` CLI).

Each function is registered under its family name; it takes an :class:`AudioClip` (or ``(samples, rate)``
tuple) and the attack's seeded generator, and returns an :class:`AudioClip` with the input's dtype and
channel count. Float samples are kept in -1..1 (clipped, as a file would be).
"""

from __future__ import annotations

import fractions
import functools
import io
import itertools
import math
import os
import shutil
import subprocess
import tempfile
from typing import Any

import numpy as np

from ._base import AudioClip, audio_in, audio_out, register
from ._base import checker as _checker
from ._base import need as _need
from ._base import number as _num


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    _need(
        isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi,
        f"{name} must be an int in {lo}..{hi}, got {v!r}",
    )
    return int(v)


def _layout(ch: int) -> str:
    if ch == 1:
        return "mono"
    if ch == 2:
        return "stereo"
    raise ValueError(f"lossy codec attacks take mono or stereo audio, got {ch} channels")


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return y[:n]
    return np.concatenate([y, np.zeros((n - y.shape[0], y.shape[1]), y.dtype)], axis=0)


# ----------------------------------------------------------------------------------- PyAV helpers


def av_encode(
    x: np.ndarray,
    sr: int,
    codec: str,
    bitrate: int,
    container: str,
    enc_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode float ``x`` [N, C] at ``sr`` with PyAV's ``codec`` at ``bitrate`` into ``container`` bytes."""
    import av

    layout = _layout(x.shape[1])
    enc_rate = enc_rate or sr
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as c:
        s = c.add_stream(codec, rate=enc_rate, options=options or {})
        s.bit_rate = int(bitrate)
        s.layout = layout
        s.codec_context.open(strict=False)
        fs = s.codec_context.frame_size or 1024
        res = av.AudioResampler(format=s.codec_context.format.name, layout=layout, rate=enc_rate, frame_size=fs)
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T.astype(np.float32)), format="fltp", layout=layout)
        fr.sample_rate = sr
        fr.pts = 0
        fr.time_base = fractions.Fraction(1, sr)
        for f in res.resample(fr) + res.resample(None):
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


def av_decode(data: bytes, sr: int, channels: int) -> np.ndarray:
    """Decode the first audio stream of ``data`` to float64 [N, channels] at ``sr`` Hz."""
    import av

    layout = _layout(channels)
    out = []
    with av.open(io.BytesIO(data), "r") as c:
        if not c.streams.audio:
            raise ValueError("encoded data has no audio stream")
        res = av.AudioResampler(format="fltp", layout=layout, rate=sr)
        for fr in c.decode(c.streams.audio[0]):
            for g in res.resample(fr):
                out.append(g.to_ndarray())
        for g in res.resample(None):
            out.append(g.to_ndarray())
    if not out:
        raise ValueError("decoder returned no audio")
    return np.concatenate(out, axis=1).T.astype(np.float64)


def _codec_attack(clip, codec: str, kbps: int, container: str, rates=None) -> AudioClip:
    x, sr, token = audio_in(clip)
    enc_rate = sr
    if rates is not None and sr not in rates:
        enc_rate = min((r for r in rates if r >= sr), default=max(rates))
    data = av_encode(x, sr, codec, kbps * 1000, container, enc_rate)
    y = av_decode(data, sr, x.shape[1])
    return audio_out(_fit_length(y, x.shape[0]), sr, token)


def _check_kbps(kbps):
    _int(kbps, "kbps", 6, 512)


@register("audio", strength=None)
def identity(clip, rng):
    """No change."""
    _x, sr, _token = audio_in(clip)
    return AudioClip(np.array(clip[0], copy=True), sr)


@_checker(_check_kbps)
@register("audio", strength="kbps")
def mp3(clip, rng, kbps):
    """MP3 (LAME) round trip at ``kbps`` kbit/s CBR."""
    return _codec_attack(
        clip, "libmp3lame", kbps, "mp3", rates=(8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
    )


@_checker(_check_kbps)
@register("audio", strength="kbps")
def aac(clip, rng, kbps):
    """AAC-LC (FFmpeg's native encoder) round trip at ``kbps`` kbit/s in an M4A container."""
    return _codec_attack(clip, "aac", kbps, "ipod")


@_checker(_check_kbps)
@register("audio", strength="kbps")
def opus(clip, rng, kbps):
    """Opus (libopus) round trip at ``kbps`` kbit/s; encoded at 48 kHz (or the next Opus rate), decoded
    back."""
    return _codec_attack(clip, "libopus", kbps, "ogg", rates=(8000, 12000, 16000, 24000, 48000))


@functools.lru_cache(maxsize=1)
def _ffmpeg_has_libvorbis() -> bool:
    exe = shutil.which("ffmpeg")
    if not exe:
        return False
    try:
        r = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return "libvorbis" in r.stdout


def _wav_bytes(x: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV of float ``x`` [N, C]."""
    import wave

    pcm = np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@_checker(_check_kbps)
@register("audio", strength="kbps", available=_ffmpeg_has_libvorbis)
def vorbis(clip, rng, kbps):
    """Vorbis (libvorbis, through the ``ffmpeg`` command) round trip at ``kbps`` kbit/s average.

    PyAV's wheels carry only FFmpeg's experimental native Vorbis encoder, whose rate control does not
    follow the requested bitrate, so this attack needs an ``ffmpeg`` with libvorbis on PATH.
    """
    x, sr, token = audio_in(clip)
    with tempfile.TemporaryDirectory(prefix="provmark-vorbis-") as tmp:
        src = os.path.join(tmp, "in.wav")
        dst = os.path.join(tmp, "out.ogg")
        with open(src, "wb") as fh:
            fh.write(_wav_bytes(x, sr))
        cmd = [
            shutil.which("ffmpeg") or "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            src,
            "-c:a",
            "libvorbis",
            "-b:a",
            f"{kbps}k",
            dst,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg libvorbis failed: {r.stderr.strip()[-300:]}")
        with open(dst, "rb") as fh:
            data = fh.read()
    y = av_decode(data, sr, x.shape[1])
    return audio_out(_fit_length(y, x.shape[0]), sr, token)


# ----------------------------------------------------------------------------------- rate and filters


def _resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    if sr_from == sr_to:
        return x.copy()
    g = math.gcd(int(sr_from), int(sr_to))
    from scipy import signal

    return signal.resample_poly(x, sr_to // g, sr_from // g, axis=0)


def _check_rate(rate, back=False):
    _int(rate, "rate", 4000, 384000)
    _need(isinstance(back, bool), f"back must be True or False, got {back!r}")


@_checker(_check_rate)
@register("audio", strength="rate")
def resample(clip, rng, rate, back=False):
    """Polyphase resampling to ``rate`` Hz (the output has that rate), or there and back with
    ``back=True``."""
    x, sr, token = audio_in(clip)
    y = _resample(x, sr, rate)
    if back:
        y = _fit_length(_resample(y, rate, sr), x.shape[0])
        return audio_out(y, sr, token)
    return audio_out(y, rate, token)


def _butter(clip, kind: str, freqs) -> AudioClip:
    x, sr, token = audio_in(clip)
    nyq = sr / 2.0
    for f in np.atleast_1d(freqs):
        _need(0 < f < nyq, f"filter frequency {f} Hz must be inside (0, {nyq:g}) for a {sr} Hz signal")
    from scipy import signal

    sos = signal.butter(4, freqs, btype=kind, fs=sr, output="sos")
    if x.shape[0] <= 3 * (2 * sos.shape[0] + 1):
        raise ValueError(f"audio too short ({x.shape[0]} samples) for the {kind} filter")
    y = signal.sosfiltfilt(sos, x, axis=0)
    return audio_out(y, sr, token)


def _check_hz(hz):
    v = _num(hz, "hz")
    _need(10 <= v <= 192000, f"hz must be in 10..192000, got {hz}")


@_checker(_check_hz)
@register("audio", strength="hz")
def lowpass(clip, rng, hz):
    """Zero-phase Butterworth low-pass (order 4, applied forward and backward) at ``hz``."""
    return _butter(clip, "lowpass", float(hz))


@_checker(_check_hz)
@register("audio", strength="hz")
def highpass(clip, rng, hz):
    """Zero-phase Butterworth high-pass (order 4, forward and backward) at ``hz``."""
    return _butter(clip, "highpass", float(hz))


def _check_band(low, high):
    _check_hz(low)
    _check_hz(high)
    _need(low < high, f"low ({low}) must be below high ({high})")


@_checker(_check_band)
@register("audio")
def bandpass(clip, rng, low, high):
    """Zero-phase Butterworth band-pass (order 4) keeping ``low``..``high`` Hz."""
    return _butter(clip, "bandpass", [float(low), float(high)])


# ----------------------------------------------------------------------------------- noise and level


def _power(x: np.ndarray) -> float:
    return float(np.mean(x * x))


def _add_noise(clip, rng, snr: float, pink: bool) -> AudioClip:
    x, sr, token = audio_in(clip)
    n = rng.standard_normal(x.shape)
    if pink:
        spec = np.fft.rfft(n, axis=0)
        f = np.fft.rfftfreq(x.shape[0], 1.0 / sr)
        shape = 1.0 / np.sqrt(np.maximum(f, 20.0))  # 1/f power; flat below 20 Hz
        n = np.fft.irfft(spec * shape[:, None], n=x.shape[0], axis=0)
    ps, pn = _power(x), _power(n)
    if ps == 0.0 or pn == 0.0:
        return audio_out(x, sr, token)  # silence: any SNR is met by adding nothing
    n *= math.sqrt(ps / (pn * 10.0 ** (snr / 10.0)))
    return audio_out(x + n, sr, token)


def _check_snr(snr):
    v = _num(snr, "snr")
    _need(-20 <= v <= 120, f"snr must be in -20..120 dB, got {snr}")


@_checker(_check_snr)
@register("audio", strength="snr")
def white_noise(clip, rng, snr):
    """Add white Gaussian noise at ``snr`` dB below the signal's power (whole clip, all channels)."""
    return _add_noise(clip, rng, float(snr), pink=False)


@_checker(_check_snr)
@register("audio", strength="snr")
def pink_noise(clip, rng, snr):
    """Add pink (1/f) noise at ``snr`` dB below the signal's power."""
    return _add_noise(clip, rng, float(snr), pink=True)


def _check_gain(gain):
    v = _num(gain, "gain")
    _need(0 <= v <= 100, f"gain must be in 0..100, got {gain}")


@_checker(_check_gain)
@register("audio", strength="gain")
def volume(clip, rng, gain):
    """Multiply by ``gain`` (linear); samples beyond full scale clip."""
    x, sr, token = audio_in(clip)
    return audio_out(x * gain, sr, token)


def _check_level(level):
    v = _num(level, "level")
    _need(0 < v <= 1, f"level must be in (0, 1], got {level}")


@_checker(_check_level)
@register("audio", strength="level")
def clip(clip, rng, level):
    """Hard-clip at ``level`` times the clip's peak amplitude."""
    x, sr, token = audio_in(clip)
    t = float(np.max(np.abs(x))) * level
    return audio_out(np.clip(x, -t, t), sr, token)


def _check_echo(delay_ms=100.0, decay=0.5):
    d = _num(delay_ms, "delay_ms")
    g = _num(decay, "decay")
    _need(0 < d <= 5000, f"delay_ms must be in (0, 5000], got {delay_ms}")
    _need(0 <= g <= 1, f"decay must be in 0..1, got {decay}")


@_checker(_check_echo)
@register("audio", strength="decay")
def echo(clip, rng, delay_ms=100.0, decay=0.5):
    """Add one echo ``delay_ms`` later at ``decay`` times the amplitude (rescaled to the input's peak if it
    would clip)."""
    x, sr, token = audio_in(clip)
    d = round(sr * delay_ms / 1000.0)
    y = x.copy()
    if d < x.shape[0]:
        y[d:] += decay * x[: x.shape[0] - d]
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if peak_out > 1.0:  # would clip: bring the peak back to the input's, as a mixing engineer would
        y *= peak_in / peak_out
    return audio_out(y, sr, token)


# ----------------------------------------------------------------------------------- time edits


def _check_seconds(seconds, offset="random"):
    v = _num(seconds, "seconds")
    _need(0 < v <= 36000, f"seconds must be in (0, 36000], got {seconds}")
    if isinstance(offset, str):
        _need(
            offset in ("random", "start", "center"),
            f"offset must be 'random', 'start', 'center' or a fraction, got {offset!r}",
        )
    else:
        o = _num(offset, "offset")
        _need(0 <= o <= 1, f"offset fraction must be in 0..1, got {offset}")


def _start(rng, free: int, offset) -> int:
    if offset == "random":
        return int(rng.integers(0, free + 1))
    if offset == "start":
        return 0
    if offset == "center":
        return free // 2
    return round(free * float(offset))


@_checker(_check_seconds)
@register("audio", strength="seconds")
def time_crop(clip, rng, seconds, offset="random"):
    """Keep ``seconds`` of audio starting at a random, initial, centred or given (fraction) offset."""
    x, sr, token = audio_in(clip)
    n = min(x.shape[0], max(1, round(seconds * sr)))
    s = _start(rng, x.shape[0] - n, offset)
    return audio_out(x[s : s + n], sr, token)


def _check_cut(seconds, count=1):
    _check_seconds(seconds)
    _int(count, "count", 1, 1000)


@_checker(_check_cut)
@register("audio", strength="seconds")
def cut_out(clip, rng, seconds, count=1):
    """Remove ``count`` segments of ``seconds`` each at random, non-overlapping places."""
    x, sr, token = audio_in(clip)
    n = round(seconds * sr)
    if n * count >= x.shape[0]:
        raise ValueError(f"cut_out: removing {count} x {seconds} s leaves nothing of a {x.shape[0] / sr:.2f} s clip")
    # choose cut starts in the shortened timeline, then map back: keeps cuts disjoint and uniform
    keep_len = x.shape[0] - n * count
    starts = np.sort(rng.integers(0, keep_len + 1, size=count))
    pieces, pos = [], 0
    for i, s in enumerate(starts):
        a = int(s) + i * n
        pieces.append(x[pos:a])
        pos = a + n
    pieces.append(x[pos:])
    return audio_out(np.concatenate(pieces, axis=0), sr, token)


@_checker(_check_seconds)
@register("audio", strength="seconds")
def splice(clip, rng, seconds, offset="random"):
    """Insert ``seconds`` of foreign sound (seeded pink noise at the clip's RMS) at a random or given
    place."""
    x, sr, token = audio_in(clip)
    n = max(1, round(seconds * sr))
    foreign = rng.standard_normal((n, x.shape[1]))
    spec = np.fft.rfft(foreign, axis=0)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    foreign = np.fft.irfft(spec / np.sqrt(np.maximum(f, 20.0))[:, None], n=n, axis=0)
    rms_x, rms_f = math.sqrt(_power(x)), math.sqrt(_power(foreign))
    foreign *= (rms_x / rms_f) if rms_f > 0 else 0.0
    at = _start(rng, x.shape[0], offset)
    return audio_out(np.concatenate([x[:at], foreign, x[at:]], axis=0), sr, token)


def _atempo(x: np.ndarray, sr: int, tempo: float) -> np.ndarray:
    """Time-stretch with FFmpeg's ``atempo`` (WSOLA): duration / tempo, pitch unchanged."""
    import av

    chs = x.shape[1]
    layout = "mono" if chs == 1 else "stereo" if chs == 2 else None
    if layout is None:
        return np.stack([_atempo(x[:, i : i + 1], sr, tempo)[:, 0] for i in range(chs)], axis=1)
    g = av.filter.Graph()
    tb = fractions.Fraction(1, sr)
    src = g.add_abuffer(format="fltp", sample_rate=sr, layout=layout, time_base=tb)
    chain = [src, g.add("atempo", f"{tempo:.6f}"), g.add("aformat", "sample_fmts=fltp"), g.add("abuffersink")]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    g.configure()
    fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T.astype(np.float32)), format="fltp", layout=layout)
    fr.sample_rate = sr
    fr.pts = 0
    fr.time_base = tb
    g.push(fr)
    g.push(None)
    out = []
    while True:
        try:
            out.append(g.pull().to_ndarray())
        except (av.error.EOFError, av.error.BlockingIOError):
            break
    if not out:
        raise RuntimeError("atempo produced no audio")
    return np.concatenate(out, axis=1).T.astype(np.float64)


def _check_speed(factor, pitch=True):
    v = _num(factor, "factor")
    _need(0.5 <= v <= 2.0, f"factor must be in 0.5..2.0, got {factor}")
    _need(isinstance(pitch, bool), f"pitch must be True or False, got {pitch!r}")


@_checker(_check_speed)
@register("audio", strength="factor")
def speed(clip, rng, factor, pitch=True):
    """Play ``factor`` times faster: with ``pitch=True`` like a tape (pitch follows), else time-stretch
    (WSOLA)."""
    x, sr, token = audio_in(clip)
    if factor == 1.0:
        return audio_out(x, sr, token)
    if pitch:
        frac = fractions.Fraction(factor).limit_denominator(1000)
        from scipy import signal

        y = signal.resample_poly(x, frac.denominator, frac.numerator, axis=0)
    else:
        y = _atempo(x, sr, float(factor))
    return audio_out(y, sr, token)


@register("audio")
def invert(clip, rng):
    """Polarity inversion (every sample negated)."""
    x, sr, token = audio_in(clip)
    return audio_out(-x, sr, token)


def _check_bits(bits):
    _int(bits, "bits", 2, 24)


@_checker(_check_bits)
@register("audio", strength="bits")
def quantize(clip, rng, bits):
    """Requantise to ``bits`` bits per sample (uniform, full scale -1..1, no dither)."""
    x, sr, token = audio_in(clip)
    q = 2.0 ** (bits - 1)
    return audio_out(np.clip(np.round(x * q), -q, q - 1) / q, sr, token)
