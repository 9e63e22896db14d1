"""Video watermark quality and robustness on real footage (the issue's quality bars).

    python benchmarks/video_robustness.py --footage /tmp/footage --seconds 6 --keys 2 --json video_rob.json
    python benchmarks/video_robustness.py --sources city bikes --zoompan 1 --attacks h264(crf=23) fps(target=15)

For each source clip (the first ``--seconds`` of real footage, and pan-and-zoom clips over real photos) and
each of ``--keys`` random keys with a random payload:

1. mark it with the shipped pipeline (provmark.media.video_io.transcode + the watermark on the luma plane,
   i.e. what provmark.video.embed_file does; default H.264 CRF 18), measuring the PSNR of the mark itself
   on the luma plane (marked vs unmarked samples before encoding) and the luma PSNR of the marked file
   against the source;
2. decode the marked file to RGB, apply every attack of provmark.bench.attacks (one seed per trial);
3. detect with provmark.video.detect_frames; "exact" = found with the right payload.
Unmarked clips go through the same attacks to count false detections.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import provmark as pm
import video_common as vc
from provmark.bench import attacks as A
from provmark.media import video_io as vio

BAR_99 = [
    "h264(crf=23)",
    "h264(crf=28)",
    "hevc(crf=28)",
    "fps(target=15)",
    "temporal_crop(seconds=3)",
    "frame_drop(frac=0.2)",
]
BAR_95 = [
    "h264(crf=35)",
    "h264(crf=40)",
    "vp9(crf=36)",
    "av1(crf=35)",
    "downscale(height=480) | h264(crf=28)",
    "crop(area=0.8)",
    "h264_crop_brightness(crf=30, side=0.71, factor=0.5)",
]


def decode_rgb(path: str) -> tuple[np.ndarray, float]:
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return np.stack(frames), fps


def mark(src: str, dst: str, key: pm.Key, payload: bytes) -> dict:
    info = vio.probe(src)
    emb = pm.video.FrameEmbedder(info.width, info.height, payload, key)
    se = [0.0, 0]

    def op(frame, index):
        lv = vio.luma_view(frame)
        before = lv.y.astype(np.float64)
        emb.push(frame)
        after = vio.luma_view(frame).y.astype(np.float64)
        d = (after - before) / (1 << (lv.bit_depth - 8))
        se[0] += float(np.sum(d * d))
        se[1] += d.size

    rep = vio.transcode(src, dst, op, audio="copy", workers=1)
    mse = se[0] / max(1, se[1])
    ya = decode_y(src)
    yb = decode_y(dst)
    n = min(len(ya), len(yb))
    mse_file = float(np.mean((ya[:n] - yb[:n]) ** 2))
    return {
        "frames": rep.frames,
        "mark_psnr_db": 10 * math.log10(255**2 / mse) if mse > 0 else float("inf"),
        "file_psnr_db": 10 * math.log10(255**2 / mse_file),
        "seconds": round(rep.seconds, 2),
    }


def decode_y(path: str) -> np.ndarray:
    out = []
    for _t, f in vio.iter_frames(path):
        out.append(
            vio.luma_view(f.reformat(format="yuv420p") if f.format.name != "yuv420p" else f).y.astype(np.float32)
        )
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--footage", default=None, help="folder with the unpacked footage packages")
    ap.add_argument("--sources", nargs="*", default=None, help=f"subset of {sorted(vc.FOOTAGE_FILES)}")
    ap.add_argument("--zoompan", type=int, default=1, help="number of pan-and-zoom clips over photos")
    ap.add_argument("--zoompan-size", default="1280x720")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--keys", type=int, default=2, help="random keys (and payloads) per source")
    ap.add_argument("--attacks", nargs="*", default=None, help="attack names (default: the issue's bars)")
    ap.add_argument("--unmarked", action="store_true", help="also run the attacks on unmarked clips")
    ap.add_argument("--seed", type=int, default=None, help="pin keys, payloads and attack seeds (reproducible runs)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="pm-video-rob-")
    srcs = vc.prepared_sources(args.footage, args.sources, args.zoompan, args.seconds, work, args.zoompan_size)
    if not srcs:
        raise SystemExit("no footage found: see benchmarks/video_common.py for how to unpack it")
    names = args.attacks or ["identity()", *BAR_99, *BAR_95]
    table: dict[str, list[bool]] = {n: [] for n in names}
    false_pos: dict[str, int] = {n: 0 for n in names}
    quality = []
    rng = np.random.default_rng(args.seed)
    for sname, src in srcs.items():
        info = vio.probe(src)
        for k in range(args.keys):
            if args.seed is None:
                key = pm.Key.generate()
            else:
                key = pm.Key.from_bytes(hashlib.sha256(f"{args.seed}-{sname}-{k}".encode()).digest())
            payload = rng.bytes(8)
            dst = os.path.join(work, f"{sname}-k{k}-marked.mp4")
            q = mark(src, dst, key, payload)
            q.update({"source": sname, "size": f"{info.width}x{info.height}"})
            quality.append(q)
            print(
                f"{sname} key {k}: mark PSNR {q['mark_psnr_db']:.2f} dB, file PSNR {q['file_psnr_db']:.2f} dB, "
                f"{q['frames']} frames in {q['seconds']} s",
                flush=True,
            )
            frames, fps = decode_rgb(dst)
            for name in names:
                atk = A.get(name, "video")
                if not atk.available():
                    continue
                try:
                    out = atk(A.VideoClip(frames, fps), seed=int(rng.integers(1 << 30)))
                except ValueError as e:
                    print(f"  {name}: skipped ({e})")
                    continue
                t0 = time.perf_counter()
                det = pm.video.detect_frames(out.frames, key, fps=out.fps)
                ok = bool(det.found and det.payload == payload)
                table[name].append(ok)
                print(
                    f"  {name:55s} {'exact' if ok else 'MISS '} score {det.score:6.2f} "
                    f"({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
                if args.unmarked and k == 0:
                    uf, ufps = decode_rgb(src)
                    uo = atk(A.VideoClip(uf, ufps), seed=0)
                    false_pos[name] += bool(pm.video.detect_frames(uo.frames, key, fps=uo.fps).found)
            os.unlink(dst)
    print("\nattack                                                   exact")
    summary = {}
    for name in names:
        r = table[name]
        if not r:
            continue
        bar = 99 if name in BAR_99 else 95 if name in BAR_95 else None
        rate = 100.0 * sum(r) / len(r)
        summary[name] = {
            "exact": sum(r),
            "trials": len(r),
            "rate_pct": round(rate, 1),
            "bar_pct": bar,
            "false_detections_unmarked": false_pos[name] if args.unmarked else None,
        }
        print(f"{name:55s} {sum(r):3d}/{len(r):<3d} ({rate:5.1f}%)  bar {bar}%")
    psnr = [q["mark_psnr_db"] for q in quality]
    print(f"mark PSNR (luma): min {min(psnr):.2f} dB, mean {np.mean(psnr):.2f} dB over {len(psnr)} clips")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "quality": quality,
                    "attacks": summary,
                    "seconds": args.seconds,
                    "keys": args.keys,
                    "native_image_core": hasattr(pm._core, "image_fold"),
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
