"""Speed of provmark.audio on one thread: 60 s of real 44.1 kHz stereo music (ETR "credits1-cp.ogg").

Side by side in one run, interleaved (so machine load hits both alike): the NumPy reference engine and the
native C++ core (csrc/core/audio_*), through the public code paths (embed / StreamEmbedder / detect, float32
samples as decoded), same inputs, same outputs (checked here too). Reports x real time
(audio seconds / wall seconds, best of --repeat) and the native / NumPy ratio for embedding, streaming
embedding (0.1 s chunks), detection (phase search + the default +-2 % speed grid) on marked and on
unmarked audio (unmarked is the worst case: no early exit), and the +-5 % speed search. audiowmark is not
packaged for Debian 12; when an `audiowmark` binary is on PATH it is timed on the same file too.

Usage: OMP_NUM_THREADS=1 python benchmarks/audio_speed.py [--seconds 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import provmark
import provmark.audio as A
from audio_common import load


def best(fn, repeat):
    """(best wall seconds, best CPU seconds of this process, last output)."""
    t, c = [], []
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        t.append(time.perf_counter() - t0)
        c.append(time.process_time() - c0)
    return min(t), min(c), out


def stream(x, sr, key, impl, step):
    """StreamEmbedder (public wrapper) over the chosen engine."""
    emb = A.StreamEmbedder(sr, x.shape[0], 1234, key)
    emb._state = A._EmbedState(sr, x.shape[0], A._payload_bits(1234)[1], A._key_bytes(key), 1.0, impl=impl)
    outs = [emb.push(x[:, i : i + step]) for i in range(0, x.shape[1], step)]
    outs.append(emb.flush())
    return np.concatenate(outs, axis=1)


def audiowmark_rows(x, sr, dur, repeat):
    exe = shutil.which("audiowmark")
    if exe is None:
        return
    import soundfile  # only needed with audiowmark

    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.wav"), os.path.join(d, "out.wav")
        soundfile.write(src, x.T, sr)
        t, _, _ = best(
            lambda: subprocess.run(
                [exe, "add", src, dst, "0123456789abcdef0123456789abcdef"], check=True, capture_output=True
            ),
            repeat,
        )
        print(f"{'audiowmark add':50s} {t:7.3f} s  {dur / t:8.0f}x real time")
        t, _, _ = best(lambda: subprocess.run([exe, "get", dst], check=True, capture_output=True), repeat)
        print(f"{'audiowmark get':50s} {t:7.3f} s  {dur / t:8.0f}x real time")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--track", default="/usr/share/games/etr/music/credits1-cp.ogg")
    ap.add_argument("--native-only", action="store_true", help="skip the NumPy reference (kernel-set comparisons)")
    args = ap.parse_args()
    provmark.set_num_threads(1)
    x, sr = load(args.track)
    x = np.ascontiguousarray(x[:, : int(args.seconds * sr)])  # float32 [2, n], as decoded
    dur = x.shape[1] / sr
    key = provmark.Key.from_bytes(bytes(range(32)))
    y = A.embed(x, sr, 1234, key)

    def det(z, impl, search=False):
        return A._detect(z, sr, key, fpr=A.DEFAULT_FPR, speed_search=search, impl=impl)

    rows = [
        ("embed (float32 in/out)", lambda impl: A._embed(x, sr, 1234, key, impl=impl)),
        ("embed, streaming 0.1 s chunks", lambda impl: stream(x, sr, key, impl, sr // 10)),
        ("detect marked (default: phases + speeds +-2 %)", lambda impl: det(y, impl)),
        ("detect unmarked (default, no early exit)", lambda impl: det(x, impl)),
        ("detect unmarked, speed_search=True (+-5 %)", lambda impl: det(x, impl, True)),
    ]
    print(
        f"# {os.path.basename(args.track)}: {dur:.0f} s, {sr} Hz, {x.shape[0]} ch; numpy {np.__version__}; "
        f"simd {provmark._core.simd_level()}, audio kernels {provmark._core.audio_kernel_isa()}; 1 thread; "
        f"best of {args.repeat}"
    )
    if args.native_only:
        for name, fn in rows:
            tc, cc, _ = best(lambda fn=fn: fn("native"), args.repeat)
            print(f"{name:48s} native {dur / tc:6.0f}x [{dur / cc:6.0f}x]")
        return
    print("# x real time = audio seconds / seconds; wall clock, then [CPU time of this process] (load-robust)")
    print(f"{'':48s} {'numpy':>20s} {'native':>20s} {'ratio':>12s}")
    for name, fn in rows:
        tn, cn, on = best(lambda fn=fn: fn("numpy"), args.repeat)
        tc, cc, oc = best(lambda fn=fn: fn("native"), args.repeat)
        if isinstance(on, np.ndarray):
            same = f"max |diff| {np.abs(on.astype(np.float64) - oc).max():.1e}"
        else:
            same = "same result" if (on.found, on.payload) == (oc.found, oc.payload) else "DIFFERENT RESULT"
        print(
            f"{name:48s} {dur / tn:6.0f}x [{dur / cn:6.0f}x]   {dur / tc:6.0f}x [{dur / cc:6.0f}x]"
            f"  {tn / tc:4.1f}x [{cn / cc:4.1f}x]  ({same})"
        )
    audiowmark_rows(x, sr, dur, args.repeat)


if __name__ == "__main__":
    main()
