"""Payload reads at the TRUE geometry: equal weights against reliability weights (provmark.image's two reads).

    python benchmarks/image_decode_diag.py                      # crop25, crop50, blur2, webp75 on the 22 photos
    python benchmarks/image_decode_diag.py --attacks crop25 --photos astronaut,camera --verbose

Uses the photos, key, payloads and attack seeds of benchmarks/image_robustness.py (same trials), so each line
matches a trial of that run. For each attacked picture it evaluates the sync at the true lattice (the nominal
period of the uncropped picture, unrotated: only attacks that keep the scale and angle are meaningful here),
then reads the payload twice: with equal weights (the read-out the informed embedding optimises) and with
each pixel weighted by 1 / its local residual power (`_Search.reliability_weighted`). Prints, per attack,
how many payloads each read decodes exactly, how many either read decodes, and the mean raw coded-bit error
rate of each read. This separates payload limits from search limits: image_robustness.py counts both.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    import image_robustness as R
    import provmark as pm
    from image_attacks import ATTACKS
    from provmark import image as I

    ap = argparse.ArgumentParser()
    ap.add_argument("--attacks", default="crop25,crop50,blur2,webp75")
    ap.add_argument("--photos", default=None, help="comma-separated photo names (default: all 22)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    pm.set_num_threads(1)
    key = pm.Key.from_bytes(R.KEY)
    tabs = I._tables(key.secret_bytes(), 64)
    plist = R._photo_list(None)
    wanted = set(args.photos.split(",")) if args.photos else None
    attacks = args.attacks.split(",")
    tot = {a: np.zeros(6) for a in attacks}  # n, equal ok, weighted ok, either ok, equal BER, weighted BER

    def read(folded: np.ndarray, shift: tuple, flip: bool) -> np.ndarray:
        return tabs.soft(I._align(folded, shift, flip))

    for idx, (name, path) in enumerate(plist):
        if wanted and name not in wanted:
            continue
        seed = 1000 + idx
        img = R._load(name, path, None)
        payload = np.random.default_rng(seed).bytes(8)
        coded = pm.Payload(payload).encode() > 0
        marked = pm.image.embed(img, payload, key)
        period0 = I.TILE * I._chip_size(min(img.shape[:2]))
        for an in attacks:
            for k in range(args.trials if an in R.RANDOM_ATTACKS else 1):
                a = np.ascontiguousarray(ATTACKS[an](marked, np.random.default_rng(seed * 100 + k)))
                hw, ww, s = I._work_shape(*a.shape[:2])
                search = I._Search(I._resample(I._luma(a), hw, ww), tabs)
                period = period0 * s
                z, shift, flip, f = search.evaluate(period, 0.0)
                soft_eq = read(f, shift, flip)
                soft_w = read(I._fold(search.reliability_weighted(period / I.TILE), period, 0.0), shift, flip)
                oks, bers = [], []
                for soft in (soft_eq, soft_w):
                    oks.append(pm.Payload.decode((soft / soft.std()).astype(np.float32)) == pm.Payload(payload))
                    bers.append(float(np.mean((soft > 0) != coded)))
                tot[an] += [1, oks[0], oks[1], oks[0] or oks[1], bers[0], bers[1]]
                if args.verbose:
                    print(
                        f"{name:36s} {an:8s} trial {k}: sync z {z:5.1f}  equal BER {bers[0]:.3f} "
                        f"{'ok' if oks[0] else '--'}  weighted BER {bers[1]:.3f} {'ok' if oks[1] else '--'}",
                        flush=True,
                    )
    print(
        f"{'attack':8s} {'n':>4s} {'equal':>6s} {'weighted':>8s} {'either':>6s} {'BER equal':>9s} {'BER weighted':>12s}"
    )
    for an, (n, e, w, u, be, bw) in tot.items():
        if n:
            print(f"{an:8s} {n:4.0f} {e:6.0f} {w:8.0f} {u:6.0f} {be / n:9.4f} {bw / n:12.4f}")
    n = sum(t[0] for t in tot.values())
    if n:
        e, w, u = (sum(t[i] for t in tot.values()) for i in (1, 2, 3))
        be, bw = (sum(t[i] for t in tot.values()) / n for i in (4, 5))
        print(f"{'all':8s} {n:4.0f} {e:6.0f} {w:8.0f} {u:6.0f} {be:9.4f} {bw:12.4f}")


if __name__ == "__main__":
    main()
