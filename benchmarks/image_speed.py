"""Speed of the image watermark beside invisible-watermark's dwtDct, same pictures, same process.

    pip install invisible-watermark   # the reference (not a provmark dependency)
    python benchmarks/image_speed.py --repeats 5
    python benchmarks/image_speed.py --memory-60mp    # peak RSS of one 60-megapixel embed (child process)
    python benchmarks/image_speed.py --profile        # where the time goes
    python benchmarks/image_speed.py --frame          # per-frame cost of LumaEmbedder.mark (the video path)

Runs are interleaved (ours, reference, ours, ...) and the median is reported, so a busy machine slows both
sides alike; the ratio is the figure to read. Detection is timed three ways: the normal call (stops when the
nominal geometry decodes); full_search=True on the marked picture (the geometric search of an attacked
picture: the lattice search, then candidates until one decodes); full_search=True on a picture marked with
another key (every lattice candidate is evaluated: the worst case).
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
    marked = pm.image.embed(img, payload, key)
    # a picture without our mark: the full search runs every lattice candidate (the worst case)
    other = pm.image.embed(img, payload, pm.Key.from_bytes(bytes(range(1, 33))))
    if os.environ.get("PROVMARK_SPEED_CHECK", "1") == "1":
        assert pm.image.detect(marked, key, full_search=True).found
        assert not pm.image.detect(other, key, full_search=True).found
    for threads in (1, 2):
        pm.set_num_threads(threads)
        ours_e = _median_time(lambda: pm.image.embed(img, payload, key), repeats)
        ours_d = _median_time(lambda: pm.image.detect(marked, key), repeats)
        ours_f = _median_time(lambda: pm.image.detect(marked, key, full_search=True), repeats)
        ours_u = _median_time(lambda: pm.image.detect(other, key, full_search=True), max(2, repeats // 2))
        print(
            f"provmark, {threads} thread(s), 1920x1080: embed {ours_e * 1000:.1f} ms ({mp / ours_e:.1f} MP/s), "
            f"detect {ours_d * 1000:.1f} ms ({mp / ours_d:.1f} MP/s), "
            f"detect with full search {ours_f * 1000:.1f} ms ({mp / ours_f:.1f} MP/s), "
            f"full search of an unmarked picture {ours_u * 1000:.1f} ms ({mp / ours_u:.1f} MP/s)"
        )
    if WatermarkEncoder is not None:
        pm.set_num_threads(1)
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", payload)
        dec = WatermarkDecoder("bytes", 64)
        wm = enc.encode(bgr, "dwtDct")
        rows: dict[str, list[float]] = {k: [] for k in ("ref_e", "ours_e", "ref_d", "ours_d", "ours_f", "ours_u")}
        for _ in range(repeats):  # interleaved, call by call
            rows["ref_e"].append(_median_time(lambda: enc.encode(bgr, "dwtDct"), 1))
            rows["ours_e"].append(_median_time(lambda: pm.image.embed(img, payload, key), 1))
            rows["ref_d"].append(_median_time(lambda: dec.decode(wm, "dwtDct"), 1))
            rows["ours_d"].append(_median_time(lambda: pm.image.detect(marked, key), 1))
            rows["ours_f"].append(_median_time(lambda: pm.image.detect(marked, key, full_search=True), 1))
            rows["ours_u"].append(_median_time(lambda: pm.image.detect(other, key, full_search=True), 1))
        med = {k: float(np.median(v)) for k, v in rows.items()}
        print("interleaved loop, 1 thread: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in med.items()))
        print(
            f"ratio (dwtDct time / provmark time), 1 thread: embed {med['ref_e'] / med['ours_e']:.1f}x, "
            f"detect (normal call) {med['ref_d'] / med['ours_d']:.1f}x, "
            f"detect (full search, marked) {med['ref_d'] / med['ours_f']:.1f}x, "
            f"detect (full search, unmarked) {med['ref_d'] / med['ours_u']:.1f}x"
        )
    print(f"load average after the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def profile() -> None:
    """Where the time goes: cProfile of 3 embeds and 3 full-search detections (marked, and marked with another
    key: every candidate evaluated) at 1080p, one thread."""
    import cProfile
    import pstats

    import provmark as pm

    pm.set_num_threads(1)
    img = _photo_1080p()
    key = pm.Key.from_bytes(bytes(range(32)))
    other = pm.Key.from_bytes(bytes(range(1, 33)))
    marked = pm.image.embed(img, b"provmark", key)
    pm.image.detect(marked, key, full_search=True)
    for label, stmt in (
        ("embed", lambda: pm.image.embed(img, b"provmark", key)),
        ("detect, full search", lambda: pm.image.detect(marked, key, full_search=True)),
        ("detect, full search, unmarked (another key)", lambda: pm.image.detect(marked, other, full_search=True)),
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
        for (file, line, func), (_cc, nc, tt, _ct, _callers) in rows:
            print(f"{100 * tt / total:5.1f} %  {func} ({os.path.basename(file)}:{line}), {nc // 3} calls per call")


def frame() -> None:
    """Per-frame cost of the video path: LumaEmbedder.mark (fused passes) against the stage-by-stage kernels."""
    from PIL import Image

    import provmark as pm
    from provmark import _core

    pm.set_num_threads(1)
    y = np.asarray(Image.fromarray(_photo_1080p()).convert("L"))
    emb = pm.image.LumaEmbedder(1920, 1080, 7, pm.Key.from_bytes(bytes(32)))
    tile = emb._tile

    def staged() -> np.ndarray:
        m = _core.image_mask(_core.image_luma(y))
        return _core.image_embed_apply(y, m, tile, float(emb.chip), emb._target)

    a, b = [], []
    for _ in range(21):  # interleaved
        a.append(_median_time(staged, 1))
        b.append(_median_time(lambda: emb.mark(y), 1))
    d = np.abs(staged().astype(np.int16) - emb.mark(y).astype(np.int16))
    print(
        f"1080p Y plane, 1 thread: stage-by-stage (image_luma, image_mask, image_embed_apply) "
        f"{np.median(a) * 1000:.2f} ms, LumaEmbedder.mark (fused) {np.median(b) * 1000:.2f} ms; "
        f"outputs differ by at most {d.max()} on {100 * (d > 0).mean():.4f} % of the samples"
    )


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
    ap.add_argument("--frame", action="store_true", help="per-frame cost of the video path (LumaEmbedder.mark)")
    args = ap.parse_args()
    if args.memory_60mp:
        memory_60mp()
    elif args.profile:
        profile()
    elif args.frame:
        frame()
    else:
        speed(args.repeats)


if __name__ == "__main__":
    main()
