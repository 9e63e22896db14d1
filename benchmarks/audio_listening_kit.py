"""A blind listening test kit for the audio mark (the issue's listening check of quiet passages and bass-heavy
music, which needs a human listener: this only prepares it).

For every track (the ETR music and klettres/alsa speech of benchmarks/audio_common.py, default strength, one
key), two 5 s passages are cut: the quietest one that is not silence (lowest RMS over 5 s windows in 0.5 s
steps, above -50 dBFS) and the most bass-heavy one (largest share of energy below 250 Hz). Each passage is
written as an ABX trial: ``NN_A.wav`` and ``NN_B.wav`` are the original and the marked passage in a random
order, ``NN_X.wav`` is one of them at random. ``answers.json`` holds the truth and each passage's SNR (whole
passage and quietest 40 ms cell); ``README.txt`` the protocol. The passages are marked as part of the whole
track (the embedder's budget runs over the track) and cut afterwards, with 20 ms fades on both.

    python benchmarks/audio_listening_kit.py --out /tmp/pm-listen [--tracks 8] [--speech 4] [--seed 1]

Protocol (README.txt): listen on headphones at a comfortable level, for each trial say whether X is A or B;
with 16 trials, 12 or more right is evidence (p < 0.04, one-sided binomial) that the mark is audible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audio_common import cell_energies, music_tracks, speech_tracks

PASSAGE_S = 5.0
FADE_S = 0.02

PROTOCOL = """Blind ABX test of the provmark audio mark.

Each trial NN has three files: NN_A.wav, NN_B.wav and NN_X.wav. A and B are the same 5 s passage, once
unmarked and once marked, in a random order; X is either A or B. Listen on headphones at a comfortable level
(as often as you like, in any order) and write down for every trial whether X is A or B. Then compare with
answers.json ("x_is"). With 16 trials, 12 or more right answers mean the mark is audible in those passages
(p < 0.04 under guessing); record the headphones, the level and the passages you heard a difference in.
"""


def _write_wav(path: str, x: np.ndarray, sr: int) -> None:
    """16-bit PCM WAV of [C, n] float samples in [-1, 1] (standard library only)."""
    pcm = np.clip(np.round(x.T * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def _fade(x: np.ndarray, sr: int) -> np.ndarray:
    n = int(FADE_S * sr)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, n)) ** 2
    y = x.copy()
    y[:, :n] *= ramp
    y[:, -n:] *= ramp[::-1]
    return y


def _passages(x: np.ndarray, sr: int) -> dict[str, int]:
    """Start samples of the quietest non-silent and the most bass-heavy 5 s windows (0.5 s steps)."""
    from scipy.signal import butter, sosfilt

    n = int(PASSAGE_S * sr)
    starts = list(range(0, x.shape[1] - n + 1, sr // 2))
    mono = x.mean(axis=0)
    low = sosfilt(butter(4, 250, fs=sr, output="sos"), mono)
    rms = np.array([np.sqrt(np.mean(mono[s : s + n] ** 2)) for s in starts])
    bass = np.array([np.sum(low[s : s + n] ** 2) / max(np.sum(mono[s : s + n] ** 2), 1e-30) for s in starts])
    audible = rms > 10 ** (-50 / 20)
    quiet = starts[int(np.argmin(np.where(audible, rms, np.inf)))]
    return {"quietest": quiet, "bass-heavy": starts[int(np.argmax(np.where(audible, bass, -1.0)))]}


def _snr(x: np.ndarray, d: np.ndarray, sr: int) -> tuple[float, float]:
    """SNR of the whole passage and of its quietest 40 ms cell that is not silence, dB."""
    whole = 10 * np.log10(np.sum(x * x) / max(np.sum(d * d), 1e-30))
    ex, ed = cell_energies(x, d, sr)
    live = ex > 1e-6 * ex.max()
    cells = 10 * np.log10(ex[live] / np.maximum(ed[live], 1e-30))
    return float(whole), float(cells[np.argmin(ex[live])])


def main() -> None:
    import provmark.audio as A
    from provmark import Key

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the trials (created; existing trials are replaced)")
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--speech", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each track to mark and search")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    key = Key.from_bytes(bytes(rng.integers(0, 256, 32, dtype=np.uint8)))
    answers = []
    trial = 0
    tracks = music_tracks(min_seconds=12)[: args.tracks] + speech_tracks(args.speech, seconds=args.seconds)
    for name, x, sr in tracks:
        x = x[:, : int(args.seconds * sr)].astype(np.float64)
        y = A.embed(x, sr, int(rng.integers(0, 2**63)), key)
        n = int(PASSAGE_S * sr)
        for kind, s0 in _passages(x, sr).items():
            trial += 1
            orig, marked = _fade(x[:, s0 : s0 + n], sr), _fade(y[:, s0 : s0 + n], sr)
            marked_is_a = bool(rng.integers(0, 2))
            a, b = (marked, orig) if marked_is_a else (orig, marked)
            x_is = "A" if rng.integers(0, 2) else "B"
            for tag, v in (("A", a), ("B", b), ("X", a if x_is == "A" else b)):
                _write_wav(os.path.join(args.out, f"{trial:02d}_{tag}.wav"), v, sr)
            whole, cell = _snr(x[:, s0 : s0 + n], y[:, s0 : s0 + n] - x[:, s0 : s0 + n], sr)
            rms_db = 20 * np.log10(max(np.sqrt(np.mean(x[:, s0 : s0 + n] ** 2)), 1e-12))
            answers.append(
                {
                    "trial": trial,
                    "track": name,
                    "passage": kind,
                    "start_s": round(s0 / sr, 2),
                    "rate": sr,
                    "level_dbfs": round(float(rms_db), 1),
                    "marked_is": "A" if marked_is_a else "B",
                    "x_is": x_is,
                    "snr_db": round(whole, 1),
                    "quietest_cell_snr_db": round(cell, 1),
                }
            )
            print(
                f"{trial:02d} {name[:18]:18s} {kind:10s} at {s0 / sr:5.1f} s, {rms_db:6.1f} dBFS: SNR {whole:5.1f} dB,"
                f" quietest 40 ms cell {cell:5.1f} dB",
                flush=True,
            )
    with open(os.path.join(args.out, "answers.json"), "w") as fh:
        json.dump(answers, fh, indent=1)
    with open(os.path.join(args.out, "README.txt"), "w") as fh:
        fh.write(PROTOCOL)
    print(f"{trial} trials in {args.out} (answers.json holds the truth: do not open it before listening)")


if __name__ == "__main__":
    main()
