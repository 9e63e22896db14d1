"""Shared helpers for the audio benchmarks: real corpora (Debian packages), codec attacks via the ffmpeg CLI.

Corpora: `apt-get install extremetuxracer-data klettres-data alsa-utils` (music: ETR OGG tracks; speech:
klettres syllables and the alsa-utils phrases, concatenated into ~30 s talks with their natural pauses).
"""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile

import numpy as np

MUSIC_GLOB = "/usr/share/games/etr/music/*.ogg"
SPEECH_GLOBS = [
    "/usr/share/sounds/alsa/[FRS]*.wav",
    "/usr/share/klettres/en/alpha/*.ogg",
    "/usr/share/klettres/fr/syllab/*.ogg",
    "/usr/share/klettres/de/alpha/*.ogg",
]


def load(path: str, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode with the ffmpeg CLI to float32 [C, n] (optionally resampled)."""
    info = (
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=channels,sample_rate",
                "-of",
                "csv=p=0",
                path,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(",")
    )
    sr, ch = int(info[0]), int(info[1])
    if rate:
        sr = rate
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ac", str(ch), "-ar", str(sr), "-"],
        capture_output=True,
        check=True,
    ).stdout
    x = np.frombuffer(raw, dtype=np.float32).reshape(-1, ch).T.copy()
    return x, sr


def music_tracks(min_seconds: float = 12.0) -> list[tuple[str, np.ndarray, int]]:
    out = []
    for p in sorted(glob.glob(MUSIC_GLOB)):
        x, sr = load(p)
        if x.shape[1] >= min_seconds * sr:
            out.append((os.path.basename(p), x, sr))
    return out


def speech_tracks(n_tracks: int = 4, seconds: float = 30.0, rate: int = 44100) -> list[tuple[str, np.ndarray, int]]:
    files = []
    for g in SPEECH_GLOBS:
        files += sorted(glob.glob(g))
    rng = np.random.default_rng(0)
    clips = [load(p, rate)[0].mean(axis=0) for p in files]
    out = []
    for t in range(n_tracks):
        parts, total = [], 0
        while total < seconds * rate:
            c = clips[int(rng.integers(len(clips)))]
            gap = np.zeros(int(rng.uniform(0.05, 0.4) * rate), dtype=np.float32)
            parts += [c, gap]
            total += len(c) + len(gap)
        x = np.concatenate(parts)[: int(seconds * rate)]
        x = x / max(1e-9, np.abs(x).max()) * 0.8
        out.append((f"speech{t}", x[None].astype(np.float32), rate))
    return out


def ffmpeg_roundtrip(x: np.ndarray, sr: int, args: list[str], ext: str, out_rate: int | None = None) -> np.ndarray:
    """Encode float [C, n] with ffmpeg `args` to a temp .ext file and decode back to float32 [C, n']."""
    ch = x.shape[0]
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.f32")
        enc = os.path.join(d, "enc." + ext)
        np.clip(x, -1, 1).T.astype(np.float32).tofile(src)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", str(ch), "-i", src, *args, enc],
            check=True,
        )
        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", enc, "-f", "f32le", "-ac", str(ch), "-ar", str(out_rate or sr), "-"],
            capture_output=True,
            check=True,
        ).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, ch).T.copy()


def resample(x: np.ndarray, sr: int, new: int) -> np.ndarray:
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(sr, new)
    return resample_poly(x, new // g, sr // g, axis=-1).astype(np.float32)


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(y, dtype=np.float64) - x
    return float(10 * np.log10(np.sum(x * x) / max(np.sum(d * d), 1e-30)))


def cell_energies(x: np.ndarray, d: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Energies of the signal ``x`` and of the mark ``d`` ([C, n]) over each hop-aligned 40 ms cell of the
    audio format (channels summed): what the local SNR per cell compares."""
    import provmark.audio as A

    span = A.DEFAULT_LAYOUT.cell_hops * A.hop_length(sr)
    nc = x.shape[1] // span
    ex = (x[:, : nc * span].reshape(x.shape[0], nc, span) ** 2).sum(axis=(0, 2))
    ed = (d[:, : nc * span].reshape(x.shape[0], nc, span) ** 2).sum(axis=(0, 2))
    return ex, ed
