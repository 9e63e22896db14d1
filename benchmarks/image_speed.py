"""Speed of the image watermark beside invisible-watermark's dwtDct, same pictures, same process.

    pip install invisible-watermark   # the reference (not a provmark dependency)
    python benchmarks/image_speed.py --repeats 5
    python benchmarks/image_speed.py --memory-60mp    # peak RSS of one 60-megapixel embed (child process)
    python benchmarks/image_speed.py --profile        # where the time goes

Runs are interleaved (ours, reference, ours, ...) and the median is reported, so a busy machine slows both
sides alike; the ratio is the figure to read. Detection is timed twice: the normal call (stops when the
nominal geometry decodes) and with full_search=True (the whole geometric search of an attacked picture).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _photo_1080p() -> np.ndarray:
    from PIL import Image

    from image_photos import load, small_photos, wallpaper_paths

    paths = wallpaper_paths()
    img = load(paths[0]) if paths else small_photos()["astronaut"]
    return np.asarray(Image.fromarray(img).resize((1920, 1080), Image.LANCZOS))


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def speed(repeats: int) -> None:
    import provmark as pm

    img = _photo_1080p()
    key = pm.Key.from_bytes(bytes(range(32)))
    payload = b"provmark"
    mp = img.shape[0] * img.shape[1] / 1e6
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        WatermarkEncoder = None
        print("invisible-watermark not installed: reporting provmark only")
    import cv2  # invisible-watermark's own dependency

    cv2.setNumThreads(1)
    bgr = img[..., ::-1].copy()
    results = {}
    for threads in (1, 2):
        pm.set_num_threads(threads)
        marked = pm.image.embed(img, payload, key)
        ours_e = _median_time(lambda: pm.image.embed(img, payload, key), repeats)
        ours_d = _median_time(lambda m=marked: pm.image.detect(m, key), repeats)
        ours_f = _median_time(lambda m=marked: pm.image.detect(m, key, full_search=True), max(2, repeats // 2))
        results[threads] = (ours_e, ours_d, ours_f)
        print(
            f"provmark, {threads} thread(s), 1920x1080: embed {ours_e * 1000:.1f} ms ({mp / ours_e:.1f} MP/s), "
            f"detect {ours_d * 1000:.1f} ms ({mp / ours_d:.1f} MP/s), "
            f"detect with full search {ours_f * 1000:.1f} ms ({mp / ours_f:.1f} MP/s)"
        )
    if WatermarkEncoder is not None:
        pm.set_num_threads(1)
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", payload)
        dec = WatermarkDecoder("bytes", 64)
        wm = enc.encode(bgr, "dwtDct")
        ref_e, ours_e, ref_d, ours_d = [], [], [], []
        marked = pm.image.embed(img, payload, key)
        for _ in range(repeats):  # interleaved
            ref_e.append(_median_time(lambda: enc.encode(bgr, "dwtDct"), 1))
            ours_e.append(_median_time(lambda: pm.image.embed(img, payload, key), 1))
            ref_d.append(_median_time(lambda: dec.decode(wm, "dwtDct"), 1))
            ours_d.append(_median_time(lambda: pm.image.detect(marked, key, full_search=True), 1))
        re, oe, rd, od = (float(np.median(x)) for x in (ref_e, ours_e, ref_d, ours_d))
        print(f"dwtDct, 1 thread: embed {re * 1000:.1f} ms, detect {rd * 1000:.1f} ms")
        print(
            f"ratio (dwtDct time / provmark time), 1 thread: embed {re / oe:.1f}x, "
            f"detect (full search) {rd / od:.1f}x, detect (normal call) {rd / results[1][1]:.1f}x"
        )


def profile() -> None:
    """Where the time goes: cProfile of 3 embeds and 3 full-search detections at 1080p, one thread."""
    import cProfile
    import pstats

    import provmark as pm

    pm.set_num_threads(1)
    img = _photo_1080p()
    key = pm.Key.from_bytes(bytes(range(32)))
    marked = pm.image.embed(img, b"provmark", key)
    pm.image.detect(marked, key, full_search=True)
    for label, stmt in (
        ("embed", lambda: pm.image.embed(img, b"provmark", key)),
        ("detect, full search", lambda: pm.image.detect(marked, key, full_search=True)),
    ):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(3):
            stmt()
        prof.disable()
        st = pstats.Stats(prof)
        total = st.total_tt
        print(f"--- {label}: {total / 3 * 1000:.0f} ms per call (under cProfile)")
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:8]
        for (file, line, func), (_cc, _nc, tt, _ct, _callers) in rows:
            print(f"{100 * tt / total:5.1f} %  {func} ({os.path.basename(file)}:{line})")


def memory_60mp() -> None:
    code = (
        "import numpy as np, resource, provmark as pm\n"
        "rng = np.random.default_rng(0)\n"
        "h, w = 6000, 10000\n"
        "base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)\n"
        "img = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)\n"
        "del base\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "out = pm.image.embed(img, b'provmark', pm.Key.from_bytes(bytes(32)))\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(f'60 MP (10000x6000 RGB): peak RSS {peak / 1024:.0f} MiB (input alone {img.nbytes / 2**20:.0f} MiB, '\n"
        "      f'RSS before embed {before / 1024:.0f} MiB)')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--memory-60mp", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile breakdown of embed and full-search detect")
    args = ap.parse_args()
    if args.memory_60mp:
        memory_60mp()
    elif args.profile:
        profile()
    else:
        speed(args.repeats)


if __name__ == "__main__":
    main()
