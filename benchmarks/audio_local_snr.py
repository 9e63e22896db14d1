"""Local SNR of the audio mark per 40 ms cell: what the 24 dB local floor and the 30 dB budget leave in quiet
passages (an objective stand-in for the issue's listening check, which needs a listener). First, the SNR of
marked white noise at every supported rate: where the budget binds everywhere, the measured SNR should sit
on Layout.snr_db (the cross terms of adjacent cells aside).

For every track (the ETR music and klettres/alsa speech of benchmarks/audio_common.py, 40 s, default strength):
the signal's and the change's energy over each hop-aligned 40 ms cell (digital silence skipped), as
10 log10(signal / change); printed: the 1st percentile and median over all cells, and the minimum and median
over the quietest 10 % of cells.

Usage: python benchmarks/audio_local_snr.py [--tracks 8] [--speech 2]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audio_common import cell_energies, music_tracks, speech_tracks


def main() -> None:
    import provmark.audio as A
    from provmark import Key

    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--speech", type=int, default=2)
    args = ap.parse_args()
    key = Key.from_bytes(bytes(range(32)))
    rng = np.random.default_rng(7)
    for sr in A.SUPPORTED_RATES:
        x = 0.1 * rng.standard_normal((2, 8 * sr))
        d = A.embed(x, sr, 1234, key) - x
        print(f"white noise {sr:5d} Hz stereo: SNR {10 * np.log10(np.sum(x * x) / np.sum(d * d)):.2f} dB "
              f"(budget {A.DEFAULT_LAYOUT.snr_db} dB)")  # fmt: skip
    for name, x, sr in music_tracks(min_seconds=20)[: args.tracks] + speech_tracks(args.speech, seconds=40):
        x = x[:, : 40 * sr].astype(np.float64)
        d = A.embed(x, sr, 1234, key) - x
        ex, ed = cell_energies(x, d, sr)
        live = ex > 1e-6 * ex.max()
        loc = 10 * np.log10(ex[live] / np.maximum(ed[live], 1e-30))
        quiet = ex[live] <= np.percentile(ex[live], 10)
        print(
            f"{name[:16]:16s} local SNR per 40 ms cell: 1st pct {np.percentile(loc, 1):5.1f} dB, median "
            f"{np.median(loc):5.1f} dB; quietest 10 % of cells: min {loc[quiet].min():5.1f} dB, median "
            f"{np.median(loc[quiet]):5.1f} dB"
        )


if __name__ == "__main__":
    main()
