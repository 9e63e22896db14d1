"""Null distribution of the image detector: unmarked photos (random crops, resizes, JPEG) and photos marked
with another key. Records the sync statistic of the nominal hypothesis and of the full search, the p-values
and any detection; fits the p-value model's effective test counts.

    python benchmarks/image_calibrate.py --items 10000 --workers 2 --out /tmp/image_null.npz
    python benchmarks/image_calibrate.py --items 10000 --rerun-from /tmp/image_null.npz --out /tmp/image_null2.npz

Prints the fitted EFFECTIVE_TESTS, the p-value deciles (uniform means calibrated) and the number of false
detections (must be 0).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _items(n: int, seed: int):
    from image_photos import all_photos

    photos = list(all_photos(max_side=1024))
    rng = np.random.default_rng(seed)
    for i in range(n):
        name, img = photos[i % len(photos)]
        yield i, name, img, int(rng.integers(0, 2**31))


def _one(args):
    i, _name, img, seed = args
    from PIL import Image

    import provmark as pm
    from provmark import image as I

    pm.set_num_threads(1)
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    area = rng.uniform(0.15, 1.0)
    aspect = rng.uniform(0.6, 1.6)
    ch = int(min(h, max(48, round(math.sqrt(area * h * w / aspect)))))
    cw = int(min(w, max(48, round(ch * aspect))))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    a = img[y0 : y0 + ch, x0 : x0 + cw]
    s = rng.uniform(0.3, 1.5)
    im = Image.fromarray(a)
    nw, nh = max(64, round(cw * s)), max(64, round(ch * s))
    im = im.resize((nw, nh), Image.BICUBIC)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(rng.integers(40, 96)))
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    a = np.asarray(im)
    key = pm.Key.from_bytes(rng.bytes(32))
    other = rng.random() < 0.2  # a fifth: marked with another key
    if other and min(a.shape[:2]) >= I.MIN_EMBED_SIDE:
        a = pm.image.embed(a, rng.bytes(8), pm.Key.from_bytes(rng.bytes(32)))
    else:
        other = False
    tabs = I._tables(key.secret_bytes(), 64)
    hw, ww, sc = I._work_shape(*a.shape[:2])
    y = I._resample(I._luma(np.ascontiguousarray(a)), hw, ww)
    prior = I.TILE * I._chip_size(min(a.shape[:2])) * sc
    z_prior = I._Search(y, tabs).evaluate(prior, 0.0)[0]
    t = time.perf_counter()
    det = pm.image.detect(a, key, full_search=True)
    dt = time.perf_counter() - t
    return (i, z_prior, det.score, det.details["hypotheses"], det.p_value, det.found, other, dt, a.shape[0], a.shape[1])


def summarize(arr: np.ndarray) -> None:
    from scipy.special import ndtr
    from scipy.stats import kstest

    z1, zf, hyp, p, found = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]

    def fit(z):
        # M such that 1 - (1 - Q(z))^M is uniform: minimise the KS distance over a log grid
        q = ndtr(-z)
        best = None
        for m in np.exp(np.linspace(np.log(10), np.log(1e6), 400)):
            pv = -np.expm1(m * np.log1p(-q))
            d = kstest(pv, "uniform").statistic
            if best is None or d < best[0]:
                best = (d, m)
        return best

    d1, m1 = fit(z1)
    df, mf = fit(zf)
    print(f"items {len(arr)}, unmarked {int((arr[:, 6] == 0).sum())}, other key {int(arr[:, 6].sum())}")
    print(f"nominal hypothesis: max z {z1.max():.2f}, fitted effective tests {m1:.0f} (KS {d1:.3f})")
    print(
        f"full search: max z {zf.max():.2f}, mean hypotheses {hyp.mean():.1f}, "
        f"fitted effective tests {mf:.0f} (KS {df:.3f}, i.e. {mf / hyp.mean():.0f} per hypothesis)"
    )
    print("p-value deciles (engine's model):", np.round(np.quantile(p, np.linspace(0.1, 0.9, 9)), 3))
    print(
        "KS vs uniform of the engine's p-values:",
        round(float(kstest(p, "uniform").statistic), 4),
        "; below 0.01 / 0.001 / 0.0001:",
        " / ".join(f"{np.mean(p < t):.4f}" for t in (0.01, 0.001, 0.0001)),
    )
    # what the engine would report with EFFECTIVE_TESTS set to the fitted per-hypothesis value
    per_hyp = mf / hyp.mean()
    p_fit = -np.expm1(per_hyp * hyp * np.log1p(-ndtr(-zf)))
    print(
        f"with EFFECTIVE_TESTS = {per_hyp:.0f}: p-value deciles",
        np.round(np.quantile(p_fit, np.linspace(0.1, 0.9, 9)), 3),
        f"KS {kstest(p_fit, 'uniform').statistic:.4f}, fraction below 0.01: {np.mean(p_fit < 0.01):.4f}, "
        f"below 0.001: {np.mean(p_fit < 0.001):.4f}",
    )
    print(f"min p-value {p.min():.3g}; false detections: {int(found.sum())}")
    print(f"mean detect time {arr[:, 7].mean() * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", default="/tmp/image_null.npz")
    ap.add_argument("--summarize", action="store_true", help="only summarise the rows saved in --out")
    ap.add_argument(
        "--rerun-from",
        metavar="NPZ",
        help="re-run only the items of this earlier run (same --items and --seed) that tried at least "
        "--min-hypotheses geometries (or scored --min-score), keep its other rows, save the merged rows to --out",
    )
    ap.add_argument("--min-hypotheses", type=int, default=65)
    ap.add_argument(
        "--min-score", type=float, default=None, help="with --rerun-from: also re-run items whose score reached this"
    )
    args = ap.parse_args()
    if args.summarize:
        summarize(np.load(args.out)["rows"])
        return
    if args.rerun_from:
        old = np.load(args.rerun_from)["rows"]
        sel = old[:, 3] >= args.min_hypotheses
        if args.min_score is not None:
            sel |= old[:, 2] >= args.min_score
        pick = {int(i) for i in old[sel, 0]}
        with Pool(args.workers) as pool:
            new = pool.map(_one, [it for it in _items(args.items, args.seed) if it[0] in pick], chunksize=2)
        rows = {int(r[0]): r for r in old}
        rows.update({int(r[0]): np.array(r, dtype=float) for r in new})
        arr = np.array([rows[i] for i in sorted(rows)], dtype=float)
        np.savez(args.out, rows=arr)
        print(f"re-ran {len(new)} of {len(old)} items")
        summarize(arr)
        return
    t0 = time.time()
    rows = []
    with Pool(args.workers) as pool:
        for k, r in enumerate(pool.imap_unordered(_one, _items(args.items, args.seed), chunksize=4)):
            rows.append(r)
            if (k + 1) % 250 == 0:
                np.savez(args.out, rows=np.array(rows, dtype=float))  # partial results survive an interruption
                print(f"{k + 1} items, {time.time() - t0:.0f} s", flush=True)
    arr = np.array(rows, dtype=float)
    np.savez(args.out, rows=arr)
    summarize(arr)
    print(f"wall {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
