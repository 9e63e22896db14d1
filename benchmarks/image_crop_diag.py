"""Why 25 % crops fail: raw coded-bit error rate and sync statistic at the TRUE geometry of a crop, and the rank
of the true lattice among the detector's autocorrelation candidates.

    python benchmarks/image_crop_diag.py Dragonfly_by_Bolly analogpattern_by_Peter_Nerlich

Uses the photos, key, payloads and crop offsets of benchmarks/image_robustness.py (same seeds), so its lines
match that run's crop25 trials 0 and 1.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    import image_robustness as R
    import provmark as pm
    from image_attacks import ATTACKS
    from provmark import image as I

    key = pm.Key.from_bytes(R.KEY)
    tabs = I._tables(key.secret_bytes(), 64)
    plist = R._photo_list(None)
    names = [n for n, _ in plist]
    for name in sys.argv[1:] or ["astronaut"]:
        idx = names.index(name)
        seed = 1000 + idx
        img = R._load(name, plist[idx][1], None)
        payload = np.random.default_rng(seed).bytes(8)
        coded = pm.Payload(payload).encode()
        marked = pm.image.embed(img, payload, key)
        period = I.TILE * I._chip_size(min(img.shape[:2]))
        for k in range(2):
            a = np.ascontiguousarray(ATTACKS["crop25"](marked, np.random.default_rng(seed * 100 + k)))
            hw, ww, s = I._work_shape(*a.shape[:2])
            search = I._Search(I._resample(I._luma(a), hw, ww), tabs)
            z, shift, flip, f = search.evaluate(period * s, 0.0)
            soft = tabs.soft(I._align(f, shift, flip))
            ber = float(np.mean((soft > 0) != (coded > 0)))
            ok = pm.Payload.decode((soft / soft.std()).astype(np.float32)) == pm.Payload(payload)
            cands = I._lattice_candidates(search.whitened(period * s / I.TILE), I.N_CANDIDATES, s)
            rank = [i for i, (p, t) in enumerate(cands) if abs(math.log(p / (period * s))) < 0.01 and abs(t) < 0.01]
            print(
                f"{name} crop25 trial {k} {a.shape}: true-geometry sync z {z:.1f}, raw BER {ber:.3f}, "
                f"decodes {ok}, lattice candidate rank {rank or 'not found'}"
            )


if __name__ == "__main__":
    main()
