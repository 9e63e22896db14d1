"""Camera motion against H.264: a steady pan over a real photo, at several speeds.

The mark is the same pattern at the same place in every frame. An H.264 P frame predicts each block from the
previous frame moved with the content, mark included; at CRF 28 and above the encoder rarely codes the
residual that would put the mark back in place, so after the intra frame the mark travels with the picture
and fades. This script measures that: clips from one real photo (scikit-image's bundled
`stereo_motorcycle` left view, 741 x 500, or `--photo NAME` from its data folder), 704 x 496, 25 fps,
`--seconds` long, the camera still or panning right by `--speeds` pixels per frame (bicubic resampling, so
fractional speeds are sub-pixel), marked by `embed_file` with its defaults, attacked with
`provmark.bench.attacks` (the real encoders) and read by `detect_frames`. Reported per speed and attack:
exact payloads over `--keys` pinned keys (sha256 of `motion-<i>`) and the sync z; then, for one key, the
image detector's sync z of single frames after the decay attack (the intra frame first), which shows the
mark fading along the prediction chain. `--chip-scale` tries larger chips (a format variant),
`--motion-frames` another window for the detector's motion-aligned average.

    python benchmarks/video_camera_motion.py --keys 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile

import numpy as np

import provmark as pm

W, H, FPS = 704, 496, 25
PAYLOAD = bytes.fromhex("0123456789abcdef")


def _photo(name: str | None) -> np.ndarray:
    import skimage
    from skimage import data, io

    if name is None:
        return np.ascontiguousarray(data.stereo_motorcycle()[0])
    return np.ascontiguousarray(io.imread(os.path.join(os.path.dirname(skimage.__file__), "data", name))[..., :3])


def _pan(photo: np.ndarray, n: int, speed: float) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(photo)
    affine, bicubic = Image.Transform.AFFINE, Image.Resampling.BICUBIC
    return np.stack([np.asarray(im.transform((W, H), affine, (1, 0, speed * i, 0, 1, 0), bicubic)) for i in range(n)])


def _decode(path: str) -> np.ndarray:
    import av

    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", default=None, help="a file in scikit-image's data folder (default: stereo_motorcycle)")
    ap.add_argument("--speeds", type=float, nargs="+", default=[0.0, 0.3, 1.0], help="pan speeds, px per frame")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--attacks", nargs="+", default=["h264(crf=23)", "h264(crf=28)", "h264(crf=35)"])
    ap.add_argument("--decay-attack", default="h264(crf=28)", help="attack for the single-frame read-out")
    ap.add_argument("--decay-frames", type=int, nargs="+", default=[0, 5, 10, 20, 40, 60, 99])
    ap.add_argument(
        "--chip-scale",
        type=float,
        default=1.0,
        help="embed with chips this many times the engine's size (a format variant; the detector's geometry "
        "search finds the larger period as a scale change)",
    )
    ap.add_argument(
        "--motion-frames",
        type=int,
        default=None,
        help="frames of the detector's motion-aligned average (default: video.MOTION_FRAMES)",
    )
    args = ap.parse_args()
    from provmark.bench import attacks as A

    if args.motion_frames is not None:
        pm.video.MOTION_FRAMES = args.motion_frames

    if args.chip_scale != 1.0:
        init = pm.video._LumaMarker.__init__

        def scaled(self, *a, **k):
            init(self, *a, **k)
            self.embedder.chip *= args.chip_scale

        pm.video._LumaMarker.__init__ = scaled

    photo = _photo(args.photo)
    n = round(args.seconds * FPS)
    work = tempfile.mkdtemp(prefix="pm-motion-")
    keys = [pm.Key.from_bytes(hashlib.sha256(f"motion-{i}".encode()).digest()) for i in range(args.keys)]
    print(f"photo {args.photo or 'stereo_motorcycle (left)'}, {W} x {H}, {n} frames at {FPS} fps; {args.keys} keys")
    for speed in args.speeds:
        frames = _pan(photo, n, speed)
        src, dst = os.path.join(work, "src.mp4"), os.path.join(work, "marked.mp4")
        _write(src, frames)
        rows: dict[str, list[tuple[bool, float]]] = {a: [] for a in ["identity()", *args.attacks]}
        decay: list[float] = []
        for ki, key in enumerate(keys):
            pm.video.embed_file(src, dst, PAYLOAD, key, progress=False, overwrite=True)
            marked = _decode(dst)
            for name in rows:
                out = A.get(name, "video")(A.VideoClip(marked, float(FPS)), seed=1)
                det = pm.video.detect_frames(out.frames, key, fps=out.fps)
                rows[name].append((bool(det.found and det.payload == PAYLOAD), det.score))
                if ki == 0 and name == args.decay_attack:
                    idx = [i for i in args.decay_frames if i < len(out.frames)]
                    decay = [pm.image.detect(out.frames[i], key).score for i in idx]
        cells = [f"{a}: {sum(ok for ok, _ in r)}/{len(r)} (z {min(z for _, z in r):.1f}-{max(z for _, z in r):.1f})"
                 for a, r in rows.items()]  # fmt: skip
        print(f"speed {speed:g} px/frame: " + " | ".join(cells), flush=True)
        if decay:
            pairs = ", ".join(f"{i}: {z:.1f}" for i, z in zip(idx, decay, strict=True))
            print(f"  single frames after {args.decay_attack} (key 0; frame: z): {pairs}", flush=True)


def _write(path: str, frames: np.ndarray) -> None:
    """An H.264 file (CRF 16, veryfast: a near-lossless source, as the tests' clips)."""
    import fractions

    import av

    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "16", "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.time_base = fractions.Fraction(1, FPS)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode())


if __name__ == "__main__":
    main()
