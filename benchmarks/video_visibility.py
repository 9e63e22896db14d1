"""Is the video mark visible? Flat areas, static areas, flicker (the issue's "look at it" bar).

For each clip the shipped frame embedder (`FrameEmbedder`, what `embed_file` runs) marks the decoded luma
planes; the mark is the exact difference (before any encoder). Reported per clip:

* mark PSNR (luma) over all frames;
* flat pixels (the frame's texture, box mean of |Laplacian| as the engine's mask measures it, under 2 grey
  levels), where a pattern would show first: their share and the mark's RMS there against elsewhere;
* static pixels (the source's temporal standard deviation under 2 grey levels), where a flicker would show
  first: the mark's per-pixel temporal standard deviation there, and the flicker of 8 x 8 block means
  (temporal standard deviation of each static block's mean mark: a block's brightness going up and down from
  frame to frame), mean and largest;
* PNG crops (`--out`): the flattest 192 x 192 square of one frame, shown 2x: source | marked | mark x 16 +
  128, and the same square in the pipeline's own H.264 CRF 18 file, to look at; with `--scales 1 0.7 0.5`
  also the square unmarked and with the mark times each scale (NAME_scales.png).

    python benchmarks/video_visibility.py --footage /tmp/footage --sources megamind vtest city bikes \\
        --zoompan 1 --out /tmp/pmv-vis
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import provmark as pm
import video_common as vc

FLAT_TEXTURE = 2.0  # grey levels of box-mean |Laplacian|: "flat" below (the engine's mask is at its floor)
STATIC_STD = 2.0  # grey levels of the source's temporal standard deviation: "static" below


def _luma_planes(path: str) -> tuple[list[np.ndarray], float]:
    import av

    from provmark.media import video_io as vio

    with av.open(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or 25)
        ys = [np.array(vio.luma_view(f).y, dtype=np.uint8) for f in c.decode(s)]
    return ys, fps


def _box(a: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(a, 2 * r + 1, mode="nearest")


def _crop_png(path: str, panels: list[np.ndarray]) -> None:
    from PIL import Image

    row = np.concatenate([np.pad(p, ((4, 4), (4, 4)), constant_values=255) for p in panels], axis=1)
    Image.fromarray(row).resize((row.shape[1] * 2, row.shape[0] * 2), Image.NEAREST).save(path)


def clip_report(name: str, src: str, key: pm.Key, out: str | None, scales: list[float]) -> dict:
    ys, _fps = _luma_planes(src)
    h, w = ys[0].shape
    emb = pm.video.FrameEmbedder(w, h, 0x0123456789ABCDEF, key)
    # the luma plane through the embedder's luma path (what embed_file does to YUV frames)
    marked = [emb._marker.embedder.mark(np.ascontiguousarray(y)) for y in ys]
    Y = np.stack(ys).astype(np.float64)
    D = np.stack(marked).astype(np.float64) - Y
    mse = float(np.mean(D * D))
    psnr = 10 * np.log10(255.0**2 / mse)
    from scipy import ndimage

    # flat: the frame's own texture (box mean of |Laplacian|, as the engine's mask measures it) below
    # FLAT_TEXTURE; static: the source's temporal standard deviation below STATIC_STD (camera noise included)
    texture = np.stack([_box(np.abs(ndimage.laplace(y)), 3) for y in Y])
    flat = texture < FLAT_TEXTURE
    static = ndimage.binary_erosion(Y.std(0) < STATIC_STD, iterations=4)
    rep = {"clip": name, "size": f"{w}x{h}", "frames": len(ys), "psnr": psnr}
    rep["flat_share"] = float(flat.mean())
    rep["flat_rms"] = float(np.sqrt(np.mean(D[flat] ** 2))) if flat.any() else float("nan")
    rep["rest_rms"] = float(np.sqrt(np.mean(D[~flat] ** 2))) if (~flat).any() else float("nan")
    rep["static_share"] = float(static.mean())
    if static.any():
        rep["static_pixel_temporal_std"] = float(np.mean(D.std(0)[static]))
        bh, bw = h // 8, w // 8
        blocks = D[:, : bh * 8, : bw * 8].reshape(len(ys), bh, 8, bw, 8).mean(axis=(2, 4))
        sb = static[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8).all(axis=(1, 3))
        if sb.any():
            bstd = blocks.std(0)[sb]
            rep["static_blocks"] = int(sb.sum())
            rep["block_flicker_mean"] = float(bstd.mean())
            rep["block_flicker_max"] = float(bstd.max())
    flat_now = flat[len(ys) // 2]
    if out:
        os.makedirs(out, exist_ok=True)
        s = 192 if min(h, w) >= 192 else min(h, w)
        score = _box(flat_now.astype(np.float64), s // 2)
        cy, cx = np.unravel_index(
            np.argmax(score[s // 2 : h - s // 2 + 1, s // 2 : w - s // 2 + 1]), (h - s + 1, w - s + 1)
        )
        t = len(ys) // 2
        sl = (slice(cy, cy + s), slice(cx, cx + s))
        with tempfile.TemporaryDirectory() as td:
            dst = os.path.join(td, "marked.mp4")
            pm.video.embed_file(src, dst, 0x0123456789ABCDEF, key, progress=False)
            fys, _ = _luma_planes(dst)
        amp = np.clip(D[t][sl] * 16 + 128, 0, 255).astype(np.uint8)
        panels = [ys[t][sl], marked[t][sl], amp, fys[t][sl]]
        _crop_png(os.path.join(out, f"{name}.png"), panels)
        rep["png"] = os.path.join(out, f"{name}.png")
        if scales:  # the same crop with the mark scaled: which amplitude is still visible on flat areas?
            crops = [ys[t][sl]] + [np.clip(np.rint(ys[t][sl] + k * D[t][sl]), 0, 255).astype(np.uint8) for k in scales]
            _crop_png(os.path.join(out, f"{name}_scales.png"), crops)
            flat_rms = np.sqrt(np.mean(D[t][sl][flat_now[sl]] ** 2)) if flat_now[sl].any() else float("nan")
            rep["scales"] = ", ".join(f"x{k:g}: flat RMS {k * flat_rms:.2f}" for k in scales)
        rep["crop"] = f"frame {t}, y {cy}..{cy + s}, x {cx}..{cx + s}, flat share {float(flat_now[sl].mean()):.2f}"
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--footage", default=None)
    ap.add_argument("--sources", nargs="*", default=["megamind", "vtest", "city"])
    ap.add_argument("--zoompan", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cache", default="/tmp/pmv-vis-src")
    ap.add_argument("--out", default=None, help="folder for the PNG crops")
    ap.add_argument(
        "--scales",
        nargs="*",
        type=float,
        default=[],
        help="also write NAME_scales.png: the crop unmarked, then with the mark times each scale",
    )
    args = ap.parse_args()
    srcs = vc.prepared_sources(args.footage, args.sources, args.zoompan, args.seconds, args.cache)
    key = pm.Key.from_bytes(hashlib.sha256(b"visibility").digest())
    for name, src in srcs.items():
        r = clip_report(name, src, key, args.out, args.scales)
        print(
            f"{r['clip']:9s} {r['size']:9s} {r['frames']:3d} frames: mark PSNR {r['psnr']:.2f} dB; "
            f"flat {100 * r['flat_share']:.1f} % of pixels, mark RMS there {r['flat_rms']:.2f} "
            f"(elsewhere {r['rest_rms']:.2f}); static {100 * r['static_share']:.1f} %"
            + (
                f", mark's temporal std there {r['static_pixel_temporal_std']:.3f}, 8x8 block flicker mean "
                f"{r['block_flicker_mean']:.3f} max {r['block_flicker_max']:.3f} ({r['static_blocks']} blocks)"
                if "block_flicker_mean" in r
                else ""
            )
            + (f"; {r['png']} ({r['crop']})" if "png" in r else "")
            + (f"; scaled marks in the crop: {r['scales']}" if "scales" in r else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
