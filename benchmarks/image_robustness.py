"""Robustness and imperceptibility of the image watermark on real photographs.

    python benchmarks/image_robustness.py --workers 2 --trials 3 --json /tmp/image_robustness.json

Photos: scikit-image's and matplotlib's (300x451 to 1000x872) and, when installed, the 15 photos of the
Debian package lomiri-wallpapers-16.04 (1365x1074 to 5312x2988). Every photo gets a random 64-bit payload
under one key at default strength; each attack (Pillow, benchmarks/image_attacks.py) is applied to the
marked picture `--trials` times for attacks with a random part (crop offsets, noise) and once otherwise.
"Exact" = the full payload recovered (CRC-checked) and reported as found at the default fpr 1e-6.
Imperceptibility: PSNR over RGB, SSIM over luma (skimage, data_range 255).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

RANDOM_ATTACKS = {"crop50", "crop25", "noise0.05", "screenshot"}
KEY = bytes(range(7, 39))


def _photo_list(max_side: int | None) -> list[tuple[str, str | None]]:
    from image_photos import SKIMAGE, wallpaper_paths

    items: list[tuple[str, str | None]] = [(n, None) for n in SKIMAGE] + [("grace_hopper", None)]
    items += [(os.path.basename(p).rsplit(".", 1)[0], p) for p in wallpaper_paths()]
    return items


def _load(name: str, path: str | None, max_side: int | None) -> np.ndarray:
    from image_photos import load, small_photos

    if path is None:
        return small_photos()[name]
    return load(path, max_side)


def _one(job):
    name, path, max_side, trials, attack_names, seed = job
    from skimage.metrics import structural_similarity

    import provmark as pm
    from image_attacks import ATTACKS

    pm.set_num_threads(1)
    img = _load(name, path, max_side)
    rng = np.random.default_rng(seed)
    key = pm.Key.from_bytes(KEY)
    payload = rng.bytes(8)
    t = time.perf_counter()
    marked = pm.image.embed(img, payload, key)
    t_embed = time.perf_counter() - t
    mse = np.mean((marked.astype(np.float64) - img.astype(np.float64)) ** 2)
    psnr = 10 * np.log10(255.0**2 / mse)
    from provmark.image import _ref_luma

    ssim = structural_similarity(_ref_luma(img), _ref_luma(marked), data_range=255.0)
    res = {"photo": name, "shape": list(img.shape), "psnr": psnr, "ssim": ssim, "embed_s": t_embed, "attacks": {}}
    for an in attack_names:
        n = trials if an in RANDOM_ATTACKS else 1
        ok = 0
        times = []
        for k in range(n):
            a = np.ascontiguousarray(ATTACKS[an](marked, np.random.default_rng(seed * 100 + k)))
            t = time.perf_counter()
            det = pm.image.detect(a, key)
            times.append(time.perf_counter() - t)
            ok += int(det.found and det.payload == payload)
        res["attacks"][an] = [ok, n, float(np.mean(times))]
    return res


def main() -> None:
    from image_attacks import ATTACKS

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=None, help="downscale larger photos (default: full size)")
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    names = args.attacks.split(",")
    jobs = [(n, p, args.max_side, args.trials, names, 1000 + i) for i, (n, p) in enumerate(_photo_list(args.max_side))]
    t0 = time.time()
    with Pool(args.workers) as pool:
        results = []
        for r in pool.imap_unordered(_one, jobs):
            results.append(r)
            bad = [a for a, (ok, n, _t) in r["attacks"].items() if ok < n]
            print(
                f"{r['photo']:40s} {r['shape']} psnr {r['psnr']:.2f} ssim {r['ssim']:.4f} "
                f"embed {r['embed_s']:.2f}s misses: {bad}",
                flush=True,
            )
    print(f"\n{len(results)} photos, wall {time.time() - t0:.0f} s")
    print(
        f"mean PSNR {np.mean([r['psnr'] for r in results]):.2f} dB (min {min(r['psnr'] for r in results):.2f}), "
        f"mean SSIM {np.mean([r['ssim'] for r in results]):.4f} (min {min(r['ssim'] for r in results):.4f})"
    )
    print(f"{'attack':14s} exact")
    table = {}
    for an in names:
        ok = sum(r["attacks"][an][0] for r in results)
        n = sum(r["attacks"][an][1] for r in results)
        t = np.mean([r["attacks"][an][2] for r in results])
        table[an] = (ok, n)
        print(f"{an:14s} {ok:4d}/{n:<4d} {100.0 * ok / n:6.1f}%   mean detect {t * 1000:.0f} ms")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "table": table}, fh, indent=1)


if __name__ == "__main__":
    main()
