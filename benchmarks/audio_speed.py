"""Speed of provmark.audio on one thread: 60 s of real 44.1 kHz stereo music (ETR "credits1-cp.ogg").

Reports x real time (audio seconds / wall seconds, best of --repeat) for embedding, streaming embedding
(0.1 s chunks), detection (phase search and the default +-2 % speed grid) on marked and on unmarked audio
(unmarked is the worst case: no early exit), and the +-5 % speed search. audiowmark is not packaged for
Debian 12, so it is not run side by side here.

Usage: OMP_NUM_THREADS=1 python benchmarks/audio_speed.py [--seconds 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import provmark
import provmark.audio as A
from audio_common import load


def best(fn, repeat):
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--track", default="/usr/share/games/etr/music/credits1-cp.ogg")
    args = ap.parse_args()
    provmark.set_num_threads(1)
    x, sr = load(args.track)
    x = x[:, : int(args.seconds * sr)]
    dur = x.shape[1] / sr
    key = provmark.Key.from_bytes(bytes(range(32)))
    y = A.embed(x, sr, 1234, key)

    def stream():
        emb = A.StreamEmbedder(sr, x.shape[0], 1234, key)
        step = sr // 10
        for i in range(0, x.shape[1], step):
            emb.push(x[:, i : i + step])
        emb.flush()

    rows = [
        ("embed", lambda: A.embed(x, sr, 1234, key)),
        ("embed, streaming 0.1 s chunks", stream),
        ("detect marked (default: phases + speeds +-2 %)", lambda: A.detect(y, sr, key)),
        ("detect unmarked (default, no early exit)", lambda: A.detect(x, sr, key)),
        ("detect unmarked, speed_search=True (+-5 %)", lambda: A.detect(x, sr, key, speed_search=True)),
    ]
    print(f"# {os.path.basename(args.track)}: {dur:.0f} s, {sr} Hz, {x.shape[0]} ch; numpy {np.__version__}")
    for name, fn in rows:
        t = best(fn, args.repeat)
        print(f"{name:50s} {t:7.3f} s  {dur / t:8.0f}x real time")


if __name__ == "__main__":
    main()
