"""False positives and p-value calibration on unmarked real audio.

Slides 10 s windows (hop --hop s) over every ETR music track and the speech corpus, and runs the detector
with --keys different keys per window at the nominal speed (384 block phases, 3 CRC-checked candidates),
counting windows x keys. Reports: false detections (found), windows with p < 1e-6 from the sync statistic
alone, and the largest sync z next to the bound's threshold.

With --echo, every track first gets the echo of the issue's table (0.3 decay, 100 ms) and each window also runs
the detector's echo pass (audio._echo_pass: the de-echoed copy searched again, both passes counted).

Usage: python benchmarks/audio_null.py [--hop 0.5] [--keys 4] [--echo]
"""

from __future__ import annotations

import argparse
import glob
import math
import multiprocessing as mp
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from audio_common import MUSIC_GLOB, load, speech_tracks


def run(args):
    _name, x, sr, hop, nkeys, echo = args
    import provmark.audio as A

    if echo:
        from audio_robustness import _echo

        x = _echo(x, sr)
    res = []
    w = 10 * sr
    for k in range(nkeys):
        kb = bytes((37 * k + 11 * i + 3) % 256 for i in range(32))
        for s0 in range(0, max(1, x.shape[1] - w + 1), int(hop * sr)):
            xw = x[:, s0 : s0 + w].astype(np.float64)
            r = A._detect_core(xw, sr, kb, (1.0,))
            if echo:
                r = A._echo_pass(
                    r, sr, 1e-6, lambda xw=xw: xw, lambda xw=xw: xw, lambda y, sp, kb=kb: A._detect_core(y, sr, kb, sp)
                )
            b = r["best"]
            p = A._p_value(b.z, r["n_tests"], b.payload is not None, r["tried"])
            res.append((b.z, p, b.payload is not None and p < 1e-6, r["n_tests"]))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hop", type=float, default=0.5)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--echo", action="store_true", help="add the table's echo and run the echo pass")
    args = ap.parse_args()
    tracks = [(os.path.basename(p), *load(p)) for p in sorted(glob.glob(MUSIC_GLOB))]
    tracks += speech_tracks(4, seconds=60.0)
    with mp.Pool(2) as pool:
        out = pool.map(run, [(n, x, sr, args.hop, args.keys, args.echo) for n, x, sr in tracks])
    allr = [r for o in out for r in o]
    z = np.array([r[0] for r in allr])
    p = np.array([r[1] for r in allr])
    found = sum(r[2] for r in allr)
    n_tests = allr[0][3]
    thr = math.sqrt(2 * math.log(n_tests / 1e-6))
    echo = ", echo 0.3 / 100 ms + echo pass" if args.echo else ""
    print(f"{len(allr)} unmarked windows x keys (10 s, hop {args.hop} s, {args.keys} keys, {len(tracks)} tracks{echo})")
    print(
        f"false detections: {found}; sync p < 1e-6: {int(np.sum(p < 1e-6))}; "
        f"max sync z {z.max():.2f} (p < 1e-6 needs z > {thr:.2f}); "
        f"z quantiles 50/99/99.9 %: " + " / ".join(f"{np.quantile(z, q):.2f}" for q in (0.5, 0.99, 0.999))
    )
    for q in (1e-2, 1e-3):
        t = math.sqrt(2 * math.log(n_tests / q))
        print(f"  bound P(best z > {t:.2f}) <= {q:g}: observed {np.mean(z > t):.2e}")


if __name__ == "__main__":
    main()
