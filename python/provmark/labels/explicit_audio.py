"""Explicit labels in audio (GB 45438 5.3): the rhythm cue "short-long-short-short" or a spoken label.

The rhythm label is Morse code for "AI" (``·-`` ``··``). GB 45438 fixes no tone, durations or level, so this
module chooses and documents them (standard Morse proportions):

===================  ===========================================
unit (short tone)    100 ms
long tone            3 units = 300 ms
gap inside a letter  1 unit  = 100 ms (between short and long, between the two shorts)
gap between letters  3 units = 300 ms (between "A" and "I")
whole cue            1 + 1 + 3 + 3 + 1 + 1 + 1 = 11 units = 1.1 s
tone                 1000 Hz sine, peak -12 dBFS, 5 ms raised-cosine ramps (no clicks)
===================  ===========================================

Placement: at the start (default), the end, or both. ``mode="mix"`` lays the cue over the programme, which is
ducked (-12 dB by default, more if needed) under the cue so the sum never clips and the cue stays clearly
distinguishable; ``mode="prepend"`` puts the cue (plus a 0.3 s gap) before / after the programme instead,
changing its length. A caller-supplied spoken label (a recording whose transcript meets the element rule) may
replace the cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .elements import check_wording
from .errors import LabelError

__all__ = ["RhythmCue", "add_audio_label", "label_spans"]

_PLACEMENTS = ("start", "end", "both")


@dataclass(frozen=True)
class RhythmCue:
    """The "short-long-short-short" tone sequence (Morse "AI")."""

    unit_s: float = 0.1
    frequency_hz: float = 1000.0
    level_dbfs: float = -12.0
    ramp_s: float = 0.005

    #: (is_tone, length in units) in order: short, gap, long, letter gap, short, gap, short
    PATTERN = ((True, 1), (False, 1), (True, 3), (False, 3), (True, 1), (False, 1), (True, 1))

    def __post_init__(self) -> None:
        if not 0.04 <= self.unit_s <= 0.5:
            raise LabelError(f"unit_s must be in [0.04, 0.5] s, got {self.unit_s!r}")
        if not 200.0 <= self.frequency_hz <= 4000.0:
            raise LabelError(f"frequency_hz must be in [200, 4000] Hz, got {self.frequency_hz!r}")
        if not -30.0 <= self.level_dbfs <= -1.0:
            raise LabelError(f"level_dbfs must be in [-30, -1] dBFS, got {self.level_dbfs!r}")
        if not 0.0 <= self.ramp_s <= self.unit_s / 4:
            raise LabelError(f"ramp_s must be in [0, unit_s/4], got {self.ramp_s!r}")

    @property
    def duration_s(self) -> float:
        return self.unit_s * sum(n for _, n in self.PATTERN)

    @property
    def peak(self) -> float:
        return 10.0 ** (self.level_dbfs / 20.0)

    def tone_intervals(self) -> list[tuple[float, float]]:
        """(start_s, end_s) of each tone, relative to the cue start."""
        out, t = [], 0.0
        for on, n in self.PATTERN:
            d = n * self.unit_s
            if on:
                out.append((t, t + d))
            t += d
        return out

    def render(self, sample_rate: int) -> np.ndarray:
        """The cue as mono float32 samples at ``sample_rate``."""
        sr = _check_rate(sample_rate)
        if self.frequency_hz >= sr / 2:
            raise LabelError(f"cue frequency {self.frequency_hz} Hz is above Nyquist for {sr} Hz audio")
        n = round(self.duration_s * sr)
        out = np.zeros(n, np.float64)
        ramp = round(self.ramp_s * sr)
        for a, b in self.tone_intervals():
            i0, i1 = round(a * sr), round(b * sr)
            t = np.arange(i1 - i0) / sr
            tone = np.sin(2 * np.pi * self.frequency_hz * t)
            if ramp > 0:
                r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
                tone[:ramp] *= r
                tone[-ramp:] *= r[::-1]
            out[i0:i1] = tone
        return (out * self.peak).astype(np.float32)


def _check_rate(sample_rate) -> int:
    if not isinstance(sample_rate, (int, np.integer)) or not 4000 <= int(sample_rate) <= 768000:
        raise LabelError(f"sample_rate must be an int in [4000, 768000], got {sample_rate!r}")
    return int(sample_rate)


def _to_float(samples) -> tuple[np.ndarray, np.dtype, bool]:
    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise LabelError(f"samples must have shape [n] or [n, channels] with n > 0, got {arr.shape}")
    if arr.ndim == 2 and not 1 <= arr.shape[1] <= 64:
        raise LabelError(f"samples must be [n, channels] with 1..64 channels, got {arr.shape}")
    mono = arr.ndim == 1
    x = arr.reshape(arr.shape[0], -1)
    if arr.dtype == np.int16:
        f = x.astype(np.float64) / 32768.0
    elif arr.dtype == np.int32:
        f = x.astype(np.float64) / 2147483648.0
    elif arr.dtype in (np.float32, np.float64):
        f = x.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise LabelError("samples contain NaN or infinity")
    else:
        raise LabelError(f"samples dtype must be int16, int32, float32 or float64, got {arr.dtype}")
    return f, arr.dtype, mono


def _from_float(f: np.ndarray, dtype: np.dtype, mono: bool) -> np.ndarray:
    if dtype == np.int16:
        out = np.clip(np.rint(f * 32768.0), -32768, 32767).astype(np.int16)
    elif dtype == np.int32:
        out = np.clip(np.rint(f * 2147483648.0), -2147483648, 2147483647).astype(np.int32)
    else:
        out = f.astype(dtype)
    return out[:, 0] if mono else out


def label_spans(n_samples: int, sample_rate: int, cue_len: int, at: str, mode: str, gap_s: float = 0.3):
    """Sample spans ``[(start, end), ...]`` that the label occupies in the output (same rules as
    add_audio_label)."""
    gap = round(gap_s * sample_rate)
    spans = []
    if mode == "mix":
        total = max(n_samples, cue_len)
        if at in ("start", "both"):
            spans.append((0, cue_len))
        if at in ("end", "both"):
            spans.append((total - cue_len, total))
    else:
        pre = cue_len + gap if at in ("start", "both") else 0
        if at in ("start", "both"):
            spans.append((0, cue_len))
        if at in ("end", "both"):
            s = pre + n_samples + gap
            spans.append((s, s + cue_len))
    return spans


def add_audio_label(
    samples,
    sample_rate: int,
    *,
    at: str = "start",
    mode: str = "mix",
    cue: RhythmCue | None = None,
    spoken=None,
    transcript: str | None = None,
    duck_db: float = -12.0,
    gap_s: float = 0.3,
    limit: float = 0.999,
):
    """Return ``samples`` with the audible explicit label added (same dtype and channel layout).

    ``samples``: [n] or [n, channels], float in [-1, 1] or int16/int32. ``spoken``: optional mono recording of
    a spoken label at ``sample_rate`` (float in [-1, 1]) whose ``transcript`` must contain both elements; it
    replaces the rhythm cue. The output peak never exceeds ``limit`` of full scale where the label was mixed
    in.
    """
    sr = _check_rate(sample_rate)
    if at not in _PLACEMENTS:
        raise LabelError(f"at must be one of {_PLACEMENTS}, got {at!r}")
    if mode not in ("mix", "prepend"):
        raise LabelError(f"mode must be 'mix' or 'prepend', got {mode!r}")
    if not -60.0 <= duck_db <= 0.0:
        raise LabelError(f"duck_db must be in [-60, 0] dB, got {duck_db!r}")
    x, dtype, mono = _to_float(samples)
    if spoken is not None:
        if cue is not None:
            raise TypeError("pass either cue= or spoken=, not both")
        check_wording(transcript, "spoken label transcript")
        clip = np.asarray(spoken)
        if clip.ndim != 1 or clip.size == 0 or clip.dtype not in (np.float32, np.float64):
            raise LabelError(f"spoken must be a non-empty mono float array, got shape {clip.shape} {clip.dtype}")
        if not np.all(np.isfinite(clip)) or float(np.max(np.abs(clip))) > 1.0:
            raise LabelError("spoken clip must be finite and within [-1, 1]")
        label = clip.astype(np.float64)
    else:
        label = (cue or RhythmCue()).render(sr).astype(np.float64)
    n, ch, L = x.shape[0], x.shape[1], label.shape[0]
    lab = np.repeat(label[:, None], ch, axis=1)
    if mode == "prepend":
        gap = np.zeros((round(gap_s * sr), ch))
        parts = []
        if at in ("start", "both"):
            parts += [lab, gap]
        parts.append(x)
        if at in ("end", "both"):
            parts += [gap, lab]
        return _from_float(np.concatenate(parts, axis=0), dtype, mono)

    total = max(n, L)
    if at == "both" and total < 2 * L:
        raise LabelError(
            f"audio of {n / sr:.2f} s is too short for a label at both start and end ({L / sr:.2f} s each); "
            "use at='start' or mode='prepend'"
        )
    out = np.zeros((total, ch))
    out[:n] = x
    label_peak = float(np.max(np.abs(label)))
    ramp = round(0.02 * sr)
    gain = np.ones(total)
    spans = label_spans(n, sr, L, at, "mix")
    for s, e in spans:
        prog_peak = float(np.max(np.abs(out[s:e]))) if e > s else 0.0
        g = 10.0 ** (duck_db / 20.0)
        if prog_peak > 0:
            g = min(g, max(limit - label_peak, 0.0) / prog_peak)
        gain[s:e] = np.minimum(gain[s:e], g)
        # smooth ramps outside the label span, where the label is silent, so they cannot clip
        if e < total:
            r = np.linspace(g, 1.0, min(ramp, total - e) + 1)[1:]
            gain[e : e + r.size] = np.minimum(gain[e : e + r.size], r)
        if s > 0:
            r = np.linspace(1.0, g, min(ramp, s) + 1)[:-1]
            gain[s - r.size : s] = np.minimum(gain[s - r.size : s], r)
    out *= gain[:, None]
    for s, e in spans:
        out[s:e] += lab[: e - s]
    return _from_float(out, dtype, mono)
