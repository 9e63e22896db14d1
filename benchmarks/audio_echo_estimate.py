"""The echo estimate of the detector's echo pass (provmark.audio._echo_estimate, docs/audio.md section 1).

For every track (the ETR music and klettres/alsa speech of benchmarks/audio_common.py, unmarked):

* the strongest cepstral peak of 4 s windows every 2 s of the first 40 s (delay, 2 x peak) and the range of
  the cepstrum at twice the delay +- 1 sample over the squared peak (an echo's dip: about -1, nothing above
  +0.5), for the peaks whose 2 x peak reaches ECHO_MIN_DECAY: what the music's beat looks like;
* how many of those windows the estimate takes for an echo (it should take none);
* the estimate on the first 10 s with an echo added (delay, decay), for the echoes of the robustness rows,
  with the uncorrected 2 x peak (before the window-overlap correction) and the range at twice the delay.

Then, on 60 s of one music track: the estimate's time, and an unmarked detection with and without a forced
second search (the cost of a triggered pass).

Usage: python benchmarks/audio_echo_estimate.py [--tracks 8] [--speech 4]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audio_common import music_tracks, speech_tracks
from audio_robustness import _echo

ECHOES = ((0.05, 0.3), (0.1, 0.3), (0.25, 0.5), (0.3, 0.3), (0.35, 0.5), (0.1, 0.15))


def _peak_and_dip(x: np.ndarray, rate: int) -> tuple[float, float, float, float]:
    """(delay s, 2 x peak, min and max of the cepstrum at 2 d +- 1 over peak^2) of the strongest peak in
    ECHO_DELAY_S,
    computed as _echo_estimate computes its cepstrum."""
    import provmark.audio as A

    m = x[:, : int(A.ECHO_SECONDS * rate)].mean(axis=0)
    lo, hi = int(A.ECHO_DELAY_S[0] * rate), int(A.ECHO_DELAY_S[1] * rate)
    seg = 1 << math.ceil(math.log2(4 * hi + 1))
    win = np.hanning(seg)
    starts = range(0, m.size - seg + 1, seg // 2)
    logmag = sum(np.log(np.abs(np.fft.rfft(m[s0 : s0 + seg] * win)) + 1e-12) for s0 in starts)
    cep = np.fft.irfft(logmag / len(starts), n=seg)
    d = lo + int(np.argmax(cep[lo : hi + 1]))
    c = float(cep[d])
    near = cep[2 * d - 1 : 2 * d + 2] / (c * c)
    return d / rate, 2 * c, float(near.min()), float(near.max())


def main() -> None:
    import provmark.audio as A
    from provmark import Key

    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=8)
    ap.add_argument("--speech", type=int, default=4)
    args = ap.parse_args()
    tracks = music_tracks(min_seconds=20)[: args.tracks] + speech_tracks(args.speech, seconds=40)
    fired = total = 0

    for name, x, sr in tracks:
        peaks, hits = [], 0
        for s in range(0, 36, 2):
            w = x[:, s * sr :]
            total += 1
            hits += A._echo_estimate(w, sr) is not None
            d, a, lo, hi = _peak_and_dip(w, sr)
            if a >= A.ECHO_MIN_DECAY:
                peaks.append(f"{d:.3f} s {a:.2f} at 2d {lo:+.1f}..{hi:+.1f}")
        fired += hits
        est = []
        for delay, decay in ECHOES:
            y = _echo(x[:, : 10 * sr], sr, delay, decay)
            e = A._echo_estimate(y, sr)
            _d, raw, lo, hi = _peak_and_dip(y, sr)
            est.append(
                f"{delay * 1000:.0f}/{decay}: "
                + ("none" if e is None else f"{e[0] / sr:.3f} s {e[1]:.2f}")
                + f" (2 x peak {raw:.2f}, at 2d {lo:+.2f}..{hi:+.2f})"
            )
        print(f"{name[:18]:18s} unmarked: {hits}/18 taken for an echo; peaks >= min decay: {peaks or 'none'}")
        print(f"{'':18s} echoed (ms/decay -> estimate): " + ", ".join(est), flush=True)
    print(f"unmarked 4 s windows taken for an echo: {fired} of {total}")

    name, x, sr = tracks[1] if len(tracks) > 1 else tracks[0]
    x = x[:, : 60 * sr].astype(np.float32)
    key = Key.from_bytes(bytes(range(32)))
    x64 = x.astype(np.float64)  # what detect() hands the estimate
    t = []
    for _ in range(5):
        t0 = time.perf_counter()
        A._echo_estimate(x64, sr)
        t.append(time.perf_counter() - t0)
    print(f"{name}: 60 s, the estimate {1000 * min(t):.1f} ms")
    estimate = A._echo_estimate
    forced = (None, (int(0.1 * sr), 0.3))  # no echo; an echo of 100 ms, 0.3 (the second search always runs)
    for label, est in zip(("no second search", "second search forced"), forced, strict=True):
        A._echo_estimate = lambda x, rate, est=est: est
        t = []
        for _ in range(3):
            t0 = time.perf_counter()
            A.detect(x, sr, key)
            t.append(time.perf_counter() - t0)
        print(f"  unmarked detection, {label}: {1000 * min(t):.0f} ms")
    A._echo_estimate = estimate


if __name__ == "__main__":
    main()
