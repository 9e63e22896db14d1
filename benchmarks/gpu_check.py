"""One-shot check of provmark's CUDA backend on a GPU machine (provmark and torch with CUDA installed).

    python benchmarks/gpu_check.py [--frames 64] [--repeats 5] [--quick] [--json report.json]

(a) the card's device-to-device copy bandwidth (torch ``copy_`` timed with CUDA events, counted as bytes read +
written per second); (b) CPU vs CUDA parity of every image kernel and end to end on real photos (scikit-image's
astronaut, coffee, chelsea) with fresh random keys, the device sync statistic (``cuda_image_sync``) and lattice
search (``cuda_image_lattice_scores``) among them;
(c) embedding and detection throughput with CUDA events on batches of ``--frames`` 1080p and 4K frames as uint8
RGB (NHWC), float32 NCHW and nv12, the sync statistic of 64 folded tiles (device vs the host's scipy correlation,
ratio and z difference), the lattice search of one 1080p picture (device vs host, ratio), and image-mode
detection with the full geometric search (images/s on 16 marked and 16
unmarked pictures); ``--image-host`` times only what image-mode detection leaves on the host (no GPU needed);
(d) one table: frames/s, GB/s (frames read + written), % of the copy bandwidth, the CPU's frames/s beside; plus a
"no host copies" proof (every memcpy the CUDA profiler sees during one embedding and one video-mode detection
call); (e) audio: CPU vs CUDA parity of ``provmark.gpu_audio`` (embedding, and the detection scores over speeds x
block phases) on music-like test signals, ``detect_batch`` against ``audio.detect``, and the real-time factors of a
batch of ``--clips`` 10 s stereo 44.1 kHz clips (CUDA events; ``detect_batch`` end to end by wall clock, marked and
unmarked; a ``StreamEmbedder`` fed 20 ms chunks) beside the CPU engine's (issue #8 bars: embed >= 20,000x,
detection >= 5,000x real time); ``--audio-host`` times only detect_batch's host decoding (no GPU needed).

Exit status: 0 when every parity check passes, 1 when one fails, 2 when there is no usable CUDA device or no
torch with CUDA (the script then only says why). Designed to finish in under 5 minutes on a fresh machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

import provmark as pm
from provmark import _core, audio, gpu, gpu_audio, image

PHOTOS = ("astronaut", "coffee", "chelsea")
SIZES = {"1080p": (1080, 1920), "4K": (2160, 3840)}


def _photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)()


# ---- (a) copy bandwidth ----------------------------------------------------------------------------------------
def copy_bandwidth(torch: Any, nbytes: int = 2 << 30, repeats: int = 10) -> float:
    """Device-to-device copy, bytes read + written per second (GB/s)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    src.fill_(7)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    t = _event_time(torch, lambda: dst.copy_(src), repeats)
    return 2 * nbytes / t / 1e9


def _event_time(torch: Any, fn: Callable[[], Any], repeats: int) -> float:
    """Seconds per call of fn on the current stream, measured with CUDA events (after one warm-up call)."""
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0 / repeats


# ---- (b) parity ------------------------------------------------------------------------------------------------
class Parity:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, float, bool]] = []

    def check(self, kernel: str, photo: str, measured: float, tolerance: float) -> None:
        ok = bool(measured <= tolerance)
        self.rows.append((kernel, photo, float(measured), float(tolerance), ok))
        print(f"  {'ok  ' if ok else 'FAIL'} {kernel:<34} {photo:<16} {measured:<12.4g} (tolerance {tolerance:g})")

    def fail(self, kernel: str, photo: str, err: BaseException) -> None:
        self.rows.append((kernel, photo, math.nan, 0.0, False))
        print(f"  FAIL {kernel:<34} {photo:<16} raised {type(err).__name__}: {err}")
        traceback.print_exc(limit=3)

    @property
    def ok(self) -> bool:
        return all(r[4] for r in self.rows)


def run_parity(torch: Any, quick: bool) -> Parity:
    par = Parity()
    rng = np.random.default_rng()

    def dev(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).cuda()

    def host(t: Any) -> np.ndarray:
        torch.cuda.synchronize()
        return t.cpu().numpy()

    def fr(t: Any, batch: bool = False, layout: str = "HWC") -> Any:
        return gpu._frames(gpu._cai(t, "gpu_check"), "gpu_check", batch, layout).view()

    def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))

    photos = PHOTOS[:1] if quick else PHOTOS
    for name in photos:
        key = pm.Key.generate()
        pl = pm.Payload(rng.bytes(8))
        img = _photo(name)
        big = np.ascontiguousarray(np.repeat(np.repeat(img, 2, axis=0), 2, axis=1))  # above the working size
        for label, fn in _parity_steps(torch, img, big, key, pl, dev, host, fr, maxdiff):
            try:
                for kernel, measured, tol in fn():
                    par.check(kernel, label, measured, tol)
            except Exception as e:  # every failure is reported, the others still run
                par.fail(label, name, e)
    return par


def _parity_steps(torch, img, big, key, pl, dev, host, fr, maxdiff):  # type: ignore[no-untyped-def]
    h, w = img.shape[:2]
    y = _core.image_luma(img)

    def luma():
        out = torch.empty((h, w), dtype=torch.float32, device="cuda")
        _core.cuda_image_luma(fr(dev(img)), out.data_ptr())
        yield "luma uint8 HWC", maxdiff(host(out), y), 1e-3
        f = np.ascontiguousarray((img / 255.0).astype(np.float32).transpose(2, 0, 1))
        _core.cuda_image_luma(fr(dev(f), layout="CHW"), out.data_ptr())
        yield "luma float32 CHW", maxdiff(host(out), _core.image_luma(np.ascontiguousarray(f.transpose(1, 2, 0)))), 1e-3

    def mask_resample():
        hb, wb = big.shape[:2]
        t = dev(big)
        m = torch.empty((hb, wb), dtype=torch.float32, device="cuda")
        _core.cuda_image_mask(fr(t), m.data_ptr())
        yb = _core.image_luma(big)
        yield "texture mask", maxdiff(host(m), image._ref_mask(yb)), 1e-4
        hw, ww, _s = image._work_shape(hb, wb)
        r = torch.empty((hw, ww), dtype=torch.float32, device="cuda")
        _core.cuda_image_resample(fr(t), r.data_ptr(), hw, ww)
        yield "area resample (luma fused)", maxdiff(host(r), _core.image_resample(yb, hw, ww)), 2e-3

    def whiten_fold():
        chip = 2.5
        wv, _den = _core.image_whiten(y, chip)
        out, dn = (torch.empty((h, w), dtype=torch.float32, device="cuda") for _ in range(2))
        yd = dev(y)  # held while the kernels use it
        _core.cuda_image_whiten(yd.data_ptr(), 1, h, w, chip, out.data_ptr(), 0, dn.data_ptr())
        yield "whiten (relative)", maxdiff(host(out), wv) / float(np.abs(wv).max()), 1e-4
        f = torch.empty((1, 128, 128), dtype=torch.float64, device="cuda")
        wd = dev(wv)
        _core.cuda_image_fold(wd.data_ptr(), 1, h, w, 32 * chip * 1.01, 0.02, f.data_ptr())
        yield "fold", maxdiff(host(f)[0], _core.image_fold(wv, 32 * chip * 1.01, 0.02)), 1e-9
        # many hypotheses over two planes in one launch, and the reliability-weighted plane
        hp = image._HostPlanes(y)
        planes = [hp.whiten(c) for c in (1.6, 3.2)]
        devs = [(dev(p[0]), dev(p[1])) for p in planes]
        hyps = [(0, 51.2, 0.0), (1, 102.4, 0.0), (0, 53.0, 0.04), (1, 99.0, -0.12), (0, 40.0, 0.0)]
        fm = torch.empty((len(hyps), 128, 128), dtype=torch.float64, device="cuda")
        _core.cuda_image_fold_many(np.array([devs[p][0].data_ptr() for p, _, _ in hyps], np.uint64),
                                   np.array([x[1] for x in hyps]), np.array([x[2] for x in hyps]), h, w,
                                   fm.data_ptr())  # fmt: skip
        got = host(fm)
        yield (
            "fold_many (5 hypotheses, 2 planes)",
            max(
                maxdiff(got[k], _core.image_fold(planes[p][0], period, theta))
                for k, (p, period, theta) in enumerate(hyps)
            ),
            1e-9,
        )
        r = torch.empty((h, w), dtype=torch.float32, device="cuda")
        _core.cuda_image_reliability(devs[1][0].data_ptr(), devs[1][1].data_ptr(), 1, h, w, image.RELIABILITY_FLOOR,
                                     r.data_ptr())  # fmt: skip
        ref = hp.reliability(planes[1])[0]
        yield "reliability weights (relative)", maxdiff(host(r), ref) / float(np.abs(ref).max()), 1e-4

    def sync():
        # the device sync statistic (cuda_image_sync: float32 FFT correlation, z, best shift and flip) against
        # image._Search.evaluate on the tiles of the marked photo, its mirror, a 25 % crop and the unmarked photo
        secret = key.secret_bytes()
        tabs = image._tables(secret, 64)
        marked = image.embed(img, pl, key)
        crop = marked[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]
        tiles, ref = [], []
        for x in (marked, marked[:, ::-1], crop, img):
            x = np.ascontiguousarray(x)
            hw, ww, s = image._work_shape(*x.shape[:2])
            yw = _core.image_luma_work(x, hw, ww)
            search = image._Search(yw, tabs)
            nominal = image.TILE * image._chip_size(min(x.shape[:2])) * s
            for period in (nominal, nominal * 2.0, nominal * 1.37):
                z, shift, flip, f = search.evaluate(period, 0.0)
                tiles.append(f)
                ref.append((z, *shift, float(flip)))
        want = np.array(ref)
        t = dev(np.stack(tiles))
        spectra = dev(gpu._sync_spectra(secret, 64))
        out = torch.empty((len(tiles), 4), dtype=torch.float64, device="cuda")
        _core.cuda_image_sync(t.data_ptr(), len(tiles), spectra.data_ptr(), out.data_ptr())
        got = host(out)
        yield f"sync z ({len(tiles)} tiles, relative)", float(np.max(np.abs(got[:, 0] / want[:, 0] - 1))), 1e-5
        yield "sync shift/flip differ (count)", float(np.sum(np.any(got[:, 1:] != want[:, 1:], axis=1))), 0

    def lattice():
        # the device lattice search (cuda_image_lattice_scores: mixed-radix FFTs at the host's sizes, flattening,
        # autocorrelation, scores) against image._lattice_candidates on the whitened working pictures of the marked
        # photo, a 25 % crop, the photo rotated 3 degrees, the unmarked photo and the 2x upscale of the marked one
        from skimage import transform

        marked = image.embed(img, pl, key)
        crop = marked[h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2]
        rot = transform.rotate(marked, 3.0, mode="reflect").astype(np.float32)
        up = np.repeat(np.repeat(marked, 2, axis=0), 2, axis=1)
        differ, worst = 0, 0.0
        for x in (marked, crop, rot, img, up):
            x = np.ascontiguousarray(x)
            hw, ww, s = image._work_shape(*x.shape[:2])
            yw = _core.image_luma_work(x, hw, ww)
            prior = image.TILE * image._chip_size(min(x.shape[:2])) * s
            wv = image._Search(yw, None).whitened(prior / image.TILE)
            fh, fw, sigma, rows, cols, pgrid, tgrid = image._lattice_plan(hw, ww, s)
            got = _core.cuda_image_lattice_scores(dev(wv).data_ptr(), hw, ww, fh, fw, *sigma, rows.astype(np.uint8),
                                                  cols.astype(np.uint8), pgrid, tgrid)  # fmt: skip
            ref = image._lattice_candidates(wv, image.N_CANDIDATES, s)
            differ += image._lattice_pick(got.copy(), pgrid, tgrid, image.N_CANDIDATES) != ref
            sc = image._lattice_scores(wv, fh, fw, sigma, rows, cols, pgrid, tgrid)
            worst = max(worst, float(np.abs(got - sc).max() / np.abs(sc).max()))
        yield "lattice scores (5 pictures, relative to the largest)", worst, 1e-4
        yield "lattice candidates differ (pictures)", float(differ), 0

    def embed():
        got = host(gpu.image_embed(dev(img), pl, key, informed=False))
        ref = image.LumaEmbedder(w, h, pl, key, informed="off").mark(img)
        yield "embed uint8, informed off (LSB)", maxdiff(got, ref), 1
        got = host(gpu.image_embed(dev(img), pl, key))
        yield "embed uint8, informed (LSB)", maxdiff(got, image.embed(img, pl, key)), 1
        got = host(gpu.image_embed(dev(big), pl, key))
        yield "embed uint8 2x upscale, informed (LSB)", maxdiff(got, image.embed(big, pl, key)), 1
        f = np.ascontiguousarray((img / 255.0).astype(np.float32).transpose(2, 0, 1))[None]
        got = host(gpu.image_embed_batch(dev(f), [pl], key))
        ref = image.embed_batch(torch.from_numpy(f), [pl], key).numpy()
        yield "embed float32 NCHW, informed", maxdiff(got, ref), 1e-5
        yg = y.round().astype(np.uint8)
        nv12 = np.concatenate([yg, np.full((h // 2, w), 128, np.uint8)])
        got = host(gpu.LumaEmbedder(w, h, pl, key).mark(dev(nv12), plane=True))
        ref = image.LumaEmbedder(w, h, pl, key, informed="off").mark(yg)
        yield "embed nv12 Y plane (LSB)", maxdiff(got[:h], ref), 1
        yield "nv12 chroma untouched", maxdiff(got[h:], nv12[h:]), 0
        got = host(gpu.LumaEmbedder(w, h, pl, key, flat_rms=0.4).mark(dev(nv12), plane=True))
        ref = image.LumaEmbedder(w, h, pl, key, informed="off", flat_rms=0.4).mark(yg)
        yield "embed nv12 Y plane, flat limit (LSB)", maxdiff(got[:h], ref), 1

    def detect():
        marked = image.embed(big, pl, key)
        det = gpu.image_detect(dev(marked), key)
        ref = image.detect(marked, key)
        same = det.found and det.payload == pl.data == ref.payload
        yield "detect: payload mismatch (0 = same)", 0.0 if same else 1.0, 0
        yield "detect: sync z difference", abs(det.score - ref.score), 0.02 * ref.score + 0.05
        yield "detect wrong key: found (0 = no)", float(gpu.image_detect(dev(marked), pm.Key.generate()).found), 0
        # the full geometric search on the device planes: a 25 % crop, a 3-degree rotation, the unmarked photo
        from skimage import transform

        hb, wb = marked.shape[:2]
        crop = np.ascontiguousarray(marked[hb // 4 : hb // 4 + hb // 2, wb // 4 : wb // 4 + wb // 2])
        rot = transform.rotate(marked, 3.0, mode="reflect").astype(np.float32)
        for label, x in (("crop 25 %", crop), ("rotate 3 deg", rot), ("unmarked", big)):
            det = gpu.image_detect(dev(x), key, full_search=True)
            ref = image.detect(x, key, full_search=True)
            yield (
                f"full search {label}: found/payload differ",
                float((det.found, det.payload) != (ref.found, ref.payload)),
                0,
            )
            yield f"full search {label}: sync z difference", abs(det.score - ref.score), 0.01 * abs(ref.score) + 0.02
            yield (
                f"full search {label}: hypotheses difference",
                abs(det.details["hypotheses"] - ref.details["hypotheses"]),
                3,
            )

    def signed_range():
        unit = (img / 255.0).astype(np.float32)
        got = host(gpu.image_embed(dev(unit * 2 - 1), pl, key, value_range=(-1, 1)))
        yield "embed float32 in [-1, 1], informed", maxdiff(got, image.embed(unit, pl, key) * 2 - 1), 2e-5
        det = gpu.image_detect(dev(got), key, value_range=(-1, 1))
        yield "detect float32 in [-1, 1]: payload mismatch", 0.0 if det.payload == pl.data else 1.0, 0

    return [("luma", luma), ("mask+resample", mask_resample), ("whiten+fold", whiten_fold), ("sync", sync),
            ("lattice", lattice), ("embed", embed), ("detect", detect),
            ("value range (-1, 1)", signed_range)]  # fmt: skip


# ---- (c) throughput ----------------------------------------------------------------------------------------------
def _frames_batch(torch: Any, n: int, hgt: int, wid: int, fmt: str) -> Any:
    """n copies of a photo scaled to hgt x wid in the given format (content does not change the speed)."""
    f = torch.from_numpy(_photo("astronaut")).cuda().permute(2, 0, 1)[None].float() / 255.0
    f = torch.nn.functional.interpolate(f, size=(hgt, wid), mode="bilinear", align_corners=False).clamp_(0, 1)
    if fmt == "float32 NCHW":
        return f.expand(n, -1, -1, -1).contiguous()
    u8 = (f * 255.0).round_().to(torch.uint8)
    if fmt == "uint8 RGB NHWC":
        return u8.permute(0, 2, 3, 1).expand(n, -1, -1, -1).contiguous()
    yp = (0.299 * u8[0, 0].float() + 0.587 * u8[0, 1].float() + 0.114 * u8[0, 2].float()).round_().to(torch.uint8)
    chroma = torch.full((hgt // 2, wid), 128, dtype=torch.uint8, device="cuda")
    return torch.cat([yp, chroma])[None].expand(n, -1, -1).contiguous()  # nv12 [N, H * 3 / 2, W]


def run_throughput(torch: Any, bw: float, n: int, repeats: int, sizes: dict[str, tuple[int, int]]) -> list[dict]:
    rows: list[dict] = []
    key = pm.Key.generate()
    pl = pm.Payload(b"gpucheck")
    for size, (hgt, wid) in sizes.items():
        emb = gpu.LumaEmbedder(wid, hgt, pl, key)
        for fmt in ("uint8 RGB NHWC", "float32 NCHW", "nv12"):
            x = _frames_batch(torch, n, hgt, wid, fmt)
            frame_bytes = x[0].numel() * x.element_size()
            if fmt == "nv12":
                # in place on the Y plane: only the luma rows are read and written
                touched = hgt * wid
                t = _event_time(torch, lambda x=x, emb=emb: emb.mark(x, plane=True, out=x), repeats)
            else:
                touched = frame_bytes
                out = torch.empty_like(x)
                t = _event_time(torch, lambda x=x, out=out, emb=emb: emb.mark(x, out=out), repeats)
                del out
            gbs = 2 * n * touched / t / 1e9
            rows.append({"op": "embed (informed off)", "size": size, "format": fmt, "frames_per_s": n / t,
                         "gb_per_s": gbs, "pct_copy": 100.0 * gbs / bw, "ms_per_batch": 1000 * t})  # fmt: skip
            print(f"  embed {size} {fmt}: {1000 * t:.2f} ms per {n} frames, {n / t:,.0f} frames/s, {gbs:.0f} GB/s")
            if fmt != "nv12":
                # video-mode detection: device luma + area resample + sum over the frames, one small copy, then
                # the CPU detector on the mean working-size plane
                t_dev = _event_time(torch, lambda x=x: gpu.work_luma(x, reduce="sum"), repeats)
                total = gpu.work_luma(x, reduce="sum")
                t0 = time.perf_counter()
                image.detect(np.clip(total / n / 255.0, 0, 1).astype(np.float32), key)
                t_host = time.perf_counter() - t0
                rows.append({"op": "detect, video mode (device part)", "size": size, "format": fmt,
                             "frames_per_s": n / t_dev, "gb_per_s": n * frame_bytes / t_dev / 1e9,
                             "pct_copy": 100.0 * (n * frame_bytes / t_dev / 1e9) / bw, "host_detect_s": t_host,
                             "frames_per_s_with_host": n / (t_dev + t_host)})  # fmt: skip
                print(
                    f"  detect (video) {size} {fmt}: device {1000 * t_dev:.2f} ms, host search {1000 * t_host:.1f} ms"
                )
            del x
            torch.cuda.empty_cache()
        if size == next(iter(sizes)):
            rows.append(sync_timing(torch, repeats))
            rows.append(lattice_timing(torch, repeats))
        # image-mode detection with the full geometric search: whitenings, batched folds and their sync
        # statistics and the lattice search on the device, the decoding on the host; unmarked pictures are the
        # worst case (every hypothesis, 6 decodes), marked ones stop at the first decode. Wall clock (host-bound),
        # images/s.
        x = _frames_batch(torch, 16, hgt, wid, "uint8 RGB NHWC")
        marked = gpu.image_embed_batch(x, pl, key, informed=False)
        for label, arr in (("marked", marked), ("unmarked", x)):
            gpu.image_detect_batch(arr[:1], key, full_search=True)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            dets = gpu.image_detect_batch(arr, key, full_search=True)
            t = time.perf_counter() - t0
            hyps = float(np.mean([d.details["hypotheses"] for d in dets]))
            rows.append({"op": f"detect, image mode, full search ({label})", "size": size,
                         "format": "uint8 RGB NHWC", "frames_per_s": 16 / t, "gb_per_s": math.nan,
                         "pct_copy": math.nan, "hypotheses": hyps, "found": sum(d.found for d in dets)})  # fmt: skip
            print(f"  detect (image, full search, {label}) {size}: {16 / t:.1f} images/s, {hyps:.1f} hypotheses "
                  f"per image, {sum(d.found for d in dets)}/16 found (bar: 1,000 images/s at 1080p)")  # fmt: skip
        del marked
        # embedding with the informed step (host round trip of the working-size planes per frame)
        t0 = time.perf_counter()
        gpu.image_embed_batch(x, pl, key, informed=True)
        torch.cuda.synchronize()
        t = time.perf_counter() - t0
        rows.append({"op": "embed (informed)", "size": size, "format": "uint8 RGB NHWC", "frames_per_s": 8 / t,
                     "gb_per_s": math.nan, "pct_copy": math.nan})  # fmt: skip
        del x
        torch.cuda.empty_cache()
    return rows


def sync_timing(torch: Any, repeats: int, k: int = 64) -> dict:
    """The sync statistic of k folded tiles (a fold batch's size, e.g. the crop scan's ~46) on the device
    (cuda_image_sync, CUDA events) against the host's per-tile scipy correlation (image._Search.evaluate's), and
    the largest relative z difference between the two."""
    key = pm.Key.generate()
    secret = key.secret_bytes()
    tabs = image._tables(secret, 64)
    y = _core.image_luma_work(_photo("coffee"), *image._work_shape(400, 600)[:2])
    search = image._Search(y, tabs)
    tiles = [search.fold(80.0 * (1.0 + 0.01 * i), 0.0) for i in range(k)]
    t = torch.from_numpy(np.stack(tiles)).cuda()
    spectra = torch.from_numpy(gpu._sync_spectra(secret, 64)).cuda()
    out = torch.empty((k, 4), dtype=torch.float64, device="cuda")
    t_dev = _event_time(
        torch, lambda: _core.cuda_image_sync(t.data_ptr(), k, spectra.data_ptr(), out.data_ptr(),
                                             torch.cuda.current_stream().cuda_stream), repeats)  # fmt: skip
    got = out.cpu().numpy()

    def host_all() -> list:
        res = []
        for f in tiles:
            search.ahead[(0.0, 0.0, 0, False)] = f
            res.append(search.evaluate(0.0, 0.0, 1.0)[0])
        return res

    t0 = time.perf_counter()
    zs = host_all()
    t_host = time.perf_counter() - t0
    rel = float(np.max(np.abs(got[:, 0] / np.array(zs) - 1)))
    print(f"  sync statistic, {k} tiles: device {1000 * t_dev:.3f} ms ({1e6 * t_dev / k:.1f} us per tile), host "
          f"{1000 * t_host:.1f} ms ({1e6 * t_host / k:.0f} us per tile, 1 thread), ratio {t_host / t_dev:.0f}x; "
          f"z max relative difference {rel:.1e}")  # fmt: skip
    return {"op": f"sync statistic ({k} tiles)", "size": "tile", "format": "128x128 float64",
            "frames_per_s": k / t_dev, "gb_per_s": math.nan, "pct_copy": math.nan, "host_tiles_per_s": k / t_host,
            "z_rel_diff": rel}  # fmt: skip


def lattice_timing(torch: Any, repeats: int) -> dict:
    """The lattice search of one 1080p picture's whitened working plane (512 x 910; FFTs 960 x 1350): on the device
    (cuda_image_lattice_scores, which synchronises and copies the scores back: wall clock, best of ``repeats``)
    against the host's image._lattice_candidates (scipy FFTs and the C++ flattening and scoring, all threads), and
    whether the picks agree."""
    from skimage import transform

    big = (transform.resize(_photo("coffee"), (1080, 1920), order=1) * 255).round().astype(np.uint8)
    hw, ww, s = image._work_shape(1080, 1920)
    y = _core.image_luma_work(big, hw, ww)
    wv = image._Search(y, None).whitened(image._chip_size(1080) * s)
    fh, fw, sigma, rows, cols, pgrid, tgrid = image._lattice_plan(hw, ww, s)
    t = torch.from_numpy(wv).cuda()
    args = (t.data_ptr(), hw, ww, fh, fw, *sigma, rows.astype(np.uint8), cols.astype(np.uint8), pgrid, tgrid)

    def best(fn: Callable[[], Any]) -> float:
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return min(runs)

    t_dev = best(lambda: _core.cuda_image_lattice_scores(*args))
    t_host = best(lambda: image._lattice_candidates(wv, image.N_CANDIDATES, s))
    got = image._lattice_pick(_core.cuda_image_lattice_scores(*args), pgrid, tgrid, image.N_CANDIDATES)
    same = got == image._lattice_candidates(wv, image.N_CANDIDATES, s)
    print(f"  lattice search, 1080p ({hw} x {ww}, FFTs {fh} x {fw}): device {1e3 * t_dev:.2f} ms (with the scores' "
          f"copy), host {1e3 * t_host:.1f} ms, ratio {t_host / t_dev:.1f}x; same candidates: {same}")  # fmt: skip
    return {"op": "lattice search (1 picture)", "size": "1080p", "format": "512x910 float32",
            "frames_per_s": 1 / t_dev, "gb_per_s": math.nan, "pct_copy": math.nan, "host_tiles_per_s": 1 / t_host,
            "same_candidates": same}  # fmt: skip


def cpu_figures(sizes: dict[str, tuple[int, int]], reps: int = 2) -> dict[tuple[str, str], float]:
    """CPU frames/s of the same operations (numpy frames, provmark's native CPU kernels, all threads)."""
    from provmark import video

    out: dict[tuple[str, str], float] = {}
    key = pm.Key.generate()
    pl = pm.Payload(b"gpucheck")
    rng = np.random.default_rng(0)
    for size, (hgt, wid) in sizes.items():
        frame = rng.integers(0, 256, (hgt, wid, 3), dtype=np.uint8)
        emb = image.LumaEmbedder(wid, hgt, pl, key, informed="off")

        def timed(fn: Callable[[], Any]) -> float:
            fn()
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            return reps / (time.perf_counter() - t0)

        out[("embed (informed off)", size)] = timed(lambda emb=emb, frame=frame: emb.mark(frame))
        out[("embed (informed)", size)] = timed(lambda frame=frame: image.embed(frame, pl, key))
        out[("detect, video mode (device part)", size)] = timed(lambda frame=frame: video._array_luma(frame))
        out[("detect, image mode, full search (unmarked)", size)] = timed(
            lambda frame=frame: image.detect(frame, key, full_search=True)
        )
        marked = image.embed(frame, pl, key)
        out[("detect, image mode, full search (marked)", size)] = timed(
            lambda marked=marked: image.detect(marked, key, full_search=True)
        )
    return out


class _ReplayTile:
    """A cached folded tile with its sync statistic precomputed (as the device provider's tiles bring theirs)."""

    def __init__(self, f: np.ndarray, tabs: Any) -> None:
        s = image._Search(None, tabs, image._HostPlanes(f))
        s.ahead[(0.0, 0.0, 0, False)] = f
        z, shift, flip, _ = s.evaluate(0.0, 0.0, 1.0)
        self.f, self.sync = f, (z, shift, flip)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.f if dtype is None else self.f.astype(dtype)


class _Replay(image._HostPlanes):
    """The host engine with its whitenings, weights and folds cached: a second search on the same plane costs only
    what stays on the host with the device provider. With ``tabs``, the tiles of whitened planes also bring their
    sync statistic (as cuda_image_sync's do): what stays is the lattice FFTs, the decoding and the orchestration;
    without, the per-hypothesis sync correlations run on the host too (the split before cuda_image_sync)."""

    def __init__(self, y: np.ndarray, tabs: Any = None, lattice: bool = False) -> None:
        super().__init__(y)
        self.tabs = tabs
        self.memo: dict[Any, Any] = {}
        if lattice:  # the lattice candidates come precomputed too (as cuda_image_lattice_scores brings them)
            self.lattice_candidates = self._lattice

    def _lattice(self, handle: Any, n_out: int, src_scale: float) -> list[tuple[float, float]]:
        """The scores cached, the picks made each time (as gpu._DevicePlanes.lattice_candidates does)."""
        k = ("l", id(handle), src_scale)
        if k not in self.memo:
            plan = image._lattice_plan(*handle[0].shape, src_scale)
            self.memo[k] = plan and (image._lattice_scores(handle[0], *plan), plan[5], plan[6])
        if not self.memo[k]:
            return []
        sc, pgrid, tgrid = self.memo[k]
        return image._lattice_pick(sc.copy(), pgrid, tgrid, n_out)

    def whiten(self, c: float) -> Any:
        if ("w", c) not in self.memo:
            self.memo[("w", c)] = super().whiten(c)
        return self.memo[("w", c)]

    def reliability(self, handle: Any) -> Any:
        k = ("r", id(handle))
        if k not in self.memo:
            self.memo[k] = super().reliability(handle)
        return self.memo[k]

    def fold(self, planes: Any, periods: Any, thetas: Any) -> list[np.ndarray]:
        out = []
        for p, a, b in zip(planes, periods, thetas, strict=True):
            k = ("f", id(p), a, b)
            if k not in self.memo:
                f = super().fold([p], [a], [b])[0]
                self.memo[k] = _ReplayTile(f, self.tabs) if self.tabs is not None and p[1] is not None else f
            out.append(self.memo[k])
        return out


def image_host_share(reps: int = 9) -> list[dict]:
    """No GPU needed (--image-host): per 1080p picture, the CPU's full search against its host-only part (what
    the device provider leaves on the host: the same search with whitening, weights and folds free), one
    thread, medians of ``reps``."""
    from skimage import transform

    pm.set_num_threads(1)
    key = pm.Key.from_bytes(bytes(range(32)))
    # what moved to the device: the host's sync statistic of 57 tiles (an unmarked picture's hypotheses)
    tabs = image._tables(key.secret_bytes(), 64)
    search = image._Search(_core.image_luma_work(_photo("coffee"), 400, 600), tabs)
    tiles = [search.fold(80.0 * (1.0 + 0.01 * i), 0.0) for i in range(57)]
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for f in tiles:
            search.ahead[(0.0, 0.0, 0, False)] = f
            search.evaluate(0.0, 0.0, 1.0)
        runs.append(time.perf_counter() - t0)
    print(f"  host sync statistic (scipy, what cuda_image_sync replaces): 57 tiles {1e3 * min(runs):.1f} ms at best, "
          f"{1e3 * float(np.median(runs)):.1f} ms median ({1e6 * min(runs) / 57:.0f} us per tile)")  # fmt: skip
    rows = []
    for name in ("astronaut", "coffee"):
        big = (transform.resize(_photo(name), (1080, 1920), order=1) * 255).round().astype(np.uint8)
        for label, x in (("unmarked", big), ("marked", image.embed(big, 1, key))):
            y = _core.image_luma_work(x, *image._work_shape(1080, 1920)[:2])
            tabs = image._tables(key.secret_bytes(), 64)
            replay, replay_sync, replay_lat = _Replay(y), _Replay(y, tabs), _Replay(y, tabs, lattice=True)
            args = (1080, 1920, key.secret_bytes(), 64, image.DEFAULT_FPR, True)
            ref = image._detect_work(replay, *args)  # fills the caches
            for other in (replay_sync, replay_lat):
                same = image._detect_work(other, *args)
                assert (same.payload, same.p_value, same.score) == (ref.payload, ref.p_value, ref.score)
            full, host, host_sync, host_lat = [], [], [], []
            for _ in range(reps):  # interleaved
                t0 = time.perf_counter()
                d = image._detect_work(image._HostPlanes(y), *args)
                full.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                image._detect_work(replay, *args)
                host.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                image._detect_work(replay_sync, *args)
                host_sync.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                image._detect_work(replay_lat, *args)
                host_lat.append(time.perf_counter() - t0)
            f, h, hs, hl = (1e3 * float(np.median(v)) for v in (full, host, host_sync, host_lat))
            rows.append({"photo": name, "case": label, "hypotheses": d.details["hypotheses"], "cpu_ms": f,
                         "host_ms_host_sync": h, "host_ms_host_lattice": hs, "host_ms": hl})  # fmt: skip
            print(
                f"  {name} 1080p {label}: {d.details['hypotheses']} hypotheses, CPU full search {f:.1f} ms, "
                f"host part with the sync correlations and the lattice search on the host {h:.1f} ms "
                f"({100 * h / f:.0f} %), with the sync on the device {hs:.1f} ms ({100 * hs / f:.0f} %), with both on "
                f"the device {hl:.1f} ms ({100 * hl / f:.0f} %)"
            )
    return rows


# ---- no host copies -------------------------------------------------------------------------------------------
def transfer_trace(torch: Any) -> dict[str, Any]:
    """Every memcpy / memset the CUDA profiler (CUPTI, through torch.profiler) records during one embedding call
    and one video-mode detection call on 8 1080p frames, and one image-mode detection with the full search of an
    unmarked 1080p picture (expected: 32 bytes of sync statistics per hypothesis, 128 KiB per decoded tile and
    per reliability-weighted fold, and one working-size whitened plane down; the hypothesis tables and the
    template spectra, 256 KiB once per call, up)."""
    from torch.profiler import ProfilerActivity, profile

    key = pm.Key.generate()
    x = _frames_batch(torch, 8, 1080, 1920, "uint8 RGB NHWC")
    out = torch.empty_like(x)
    emb = gpu.LumaEmbedder(1920, 1080, b"gpucheck", key)
    emb.mark(x, out=out)
    gpu.work_luma(x, reduce="sum")
    torch.cuda.synchronize()
    report: dict[str, Any] = {}
    for label, fn in (("embed 8 x 1080p", lambda: emb.mark(x, out=out)),
                      ("video detect 8 x 1080p", lambda: gpu.work_luma(x, reduce="sum")),
                      ("image detect 1 x 1080p, full search, unmarked",
                       lambda: gpu.image_detect(x[0], key, full_search=True))):  # fmt: skip
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "trace.json")
            prof.export_chrome_trace(path)
            with open(path, encoding="utf-8") as fh:
                events = json.load(fh).get("traceEvents", [])
        copies = [
            {"name": e.get("name"), "bytes": (e.get("args") or {}).get("bytes")}
            for e in events
            if e.get("cat") in ("gpu_memcpy", "gpu_memset") or "memcpy" in str(e.get("name", "")).lower()
        ]
        report[label] = copies
        kinds: dict[str, list[Any]] = {}
        for c in copies:
            kinds.setdefault(str(c["name"]), []).append(c["bytes"])
        print(
            f"  {label}: {len(copies)} transfers/memsets: "
            + "; ".join(f"{k} x{len(v)} bytes {v}" for k, v in kinds.items())
        )
    frame_bytes = 1080 * 1920 * 3
    print(f"  (one 1080p RGB frame is {frame_bytes:,} bytes: any host copy of frames would show up as such sizes)")
    return report


# ---- (e) audio -------------------------------------------------------------------------------------------------
AUDIO_RATE = 44100


def _music(rng: np.random.Generator, seconds: float, channels: int = 2) -> np.ndarray:
    """Music-like test signal: notes of harmonic tones with attack / decay envelopes, a little noise."""
    n = int(seconds * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    y = np.zeros((channels, n))
    note = int(0.25 * AUDIO_RATE)
    for start in range(0, n, note):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        seg = t[start : start + note] - t[start]
        env = np.minimum(seg / 0.01, 1.0) * np.exp(-seg * rng.uniform(2, 8))
        for c in range(channels):
            y[c, start : start + note] += env * sum(
                rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * f0 * seg + rng.uniform(0, 6)) for k in range(1, 7)
            )
    y += 0.003 * rng.standard_normal(y.shape)
    return 0.3 * y / np.abs(y).max()


def _cpu_z(x: np.ndarray, key: pm.Key, speeds: tuple[float, ...]) -> np.ndarray:
    """Sync z [S, P] of one clip through the CPU core (what audio.detect ranks)."""
    lay = audio.DEFAULT_LAYOUT
    tables = audio._tables(audio._key_bytes(key), lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng = lay.groups_for_rate(AUDIO_RATE)
    an = audio._NativeAnalysis(x, AUDIO_RATE, lay, max_scale=max(speeds) * 1.01)
    out = []
    for s in speeds:
        pw = an.projections(s, ng, tables)
        out.append(np.zeros(lay.block_hops) if pw is None else an.scores(pw[0], pw[1], tables, ng)[0])
    return np.array(out)


def run_audio(torch: Any, par: Parity, n_clips: int, repeats: int, seconds: float = 10.0) -> list[dict]:
    rng = np.random.default_rng()
    key = pm.Key.generate()
    payload = int(rng.integers(1, 2**62))
    speeds = audio.SPEEDS_DEFAULT
    # parity on 3 clips (float64)
    clips = np.stack([_music(rng, 8.0) for _ in range(3)])
    try:
        ref = np.stack([audio.embed(c, AUDIO_RATE, payload, key) for c in clips])
        y = gpu_audio.embed(torch.from_numpy(clips).cuda(), AUDIO_RATE, payload, key)
        torch.cuda.synchronize()
        yh = y.cpu().numpy()
        par.check("audio embed (max |diff|)", "music 3 x 8 s", float(np.abs(yh - ref).max()), 1e-9)
        found = [audio.detect(c, AUDIO_RATE, key).found for c in yh]
        want = [audio.detect(c, AUDIO_RATE, key).found for c in ref]
        par.check("audio detect of device marks (#diff)", "music 3 x 8 s", float(found != want), 0.0)
        sc = gpu_audio.scores(torch.from_numpy(ref).cuda(), AUDIO_RATE, key, speeds=speeds)
        zd = max(float(np.abs(sc.z[b] - _cpu_z(ref[b], key, speeds)).max()) for b in range(3))
        par.check("audio scores z (max |diff|)", "music 3 x 8 s", zd, 1e-6)
        # detect_batch on 2 marked clips and 1 unmarked one: the CPU detector's answers
        mixed = np.stack([ref[0], clips[1], ref[2]])
        dets = gpu_audio.detect_batch(torch.from_numpy(mixed).cuda(), AUDIO_RATE, key)
        cpu = [audio.detect(c, AUDIO_RATE, key) for c in mixed]
        same = [
            (d.found, d.payload, d.details["speed"], d.details["n_tests"])
            == (c.found, c.payload, c.details["speed"], c.details["n_tests"])
            for d, c in zip(dets, cpu, strict=True)
        ]
        par.check("audio detect_batch = detect (#diff)", "music 3 x 8 s", float(len(same) - sum(same)), 0.0)
        sd = max(abs(d.score - c.score) for d, c in zip(dets, cpu, strict=True))
        par.check("audio detect_batch score (max |diff|)", "music 3 x 8 s", sd, 1e-5)
    except Exception as e:
        par.fail("audio", "music 3 x 8 s", e)
    # throughput: n_clips stereo float32 clips of `seconds`
    base = _music(rng, seconds).astype(np.float32)
    x = torch.from_numpy(np.stack([np.roll(base, 4410 * i, axis=1) for i in range(n_clips)])).cuda()
    out = torch.empty_like(x)
    audio_s = n_clips * seconds
    rows = []
    t = _event_time(torch, lambda: gpu_audio.embed(x, AUDIO_RATE, payload, key, out=out), repeats)
    rows.append(
        {"op": "audio embed", "clips": n_clips, "seconds": seconds, "s_per_batch": t, "x_real_time": audio_s / t}
    )
    t = _event_time(torch, lambda: gpu_audio.scores(x, AUDIO_RATE, key, speeds=speeds), repeats)
    rows.append({"op": f"audio scores ({len(speeds)} speeds x 480 phases)", "clips": n_clips, "seconds": seconds,
                 "s_per_batch": t, "x_real_time": audio_s / t})  # fmt: skip
    # detect_batch end to end (device scores + the host's search and decoding; synchronises): wall clock
    for label, batch in (("marked", out), ("unmarked", x)):
        gpu_audio.detect_batch(batch, AUDIO_RATE, key)  # warm-up
        t0 = time.perf_counter()
        for _ in range(max(1, repeats // 2)):
            dets = gpu_audio.detect_batch(batch, AUDIO_RATE, key)
        t = (time.perf_counter() - t0) / max(1, repeats // 2)
        found = sum(d.found for d in dets)
        rows.append({"op": f"audio detect_batch ({label}: {found} found)", "clips": n_clips, "seconds": seconds,
                     "s_per_batch": t, "x_real_time": audio_s / t})  # fmt: skip
    # streaming: one 10 s stereo clip in 20 ms device chunks (the push cost per chunk; no push synchronises, so
    # the wall clock includes the final synchronisation)
    chunk = AUDIO_RATE // 50
    xs = x[0]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    st = gpu_audio.StreamEmbedder(AUDIO_RATE, xs.shape[0], payload, key)
    for i in range(0, xs.shape[1], chunk):
        st.push(xs[:, i : i + chunk])
    st.flush()
    torch.cuda.synchronize()
    t = time.perf_counter() - t0
    rows.append({"op": "audio StreamEmbedder (20 ms chunks)", "clips": 1, "seconds": seconds, "s_per_batch": t,
                 "x_real_time": seconds / t})  # fmt: skip
    one = base.astype(np.float64)
    t0 = time.perf_counter()
    marked_one = audio.embed(one, AUDIO_RATE, payload, key)
    cpu_embed = seconds / (time.perf_counter() - t0)
    cpu_detect = {}
    for label, clip in (("marked", marked_one), ("unmarked", one)):
        t0 = time.perf_counter()
        audio.detect(clip, AUDIO_RATE, key)
        cpu_detect[label] = seconds / (time.perf_counter() - t0)
    rows[0]["cpu_x_real_time"], rows[1]["cpu_x_real_time"] = cpu_embed, cpu_detect["unmarked"]
    rows[2]["cpu_x_real_time"], rows[3]["cpu_x_real_time"] = cpu_detect["marked"], cpu_detect["unmarked"]
    st = audio.StreamEmbedder(AUDIO_RATE, one.shape[0], payload, key)
    t0 = time.perf_counter()
    for i in range(0, one.shape[1], chunk):
        st.push(one[:, i : i + chunk])
    st.flush()
    rows[4]["cpu_x_real_time"] = seconds / (time.perf_counter() - t0)
    rows[0]["bar"] = rows[4]["bar"] = 20000.0
    rows[1]["bar"] = rows[2]["bar"] = rows[3]["bar"] = 5000.0
    for r in rows:
        print(f"  {r['op']:<40} {r['clips']} x {r['seconds']:.0f} s: {r['s_per_batch'] * 1e3:9.2f} ms/batch, "
              f"{r['x_real_time']:>10,.0f}x real time (bar {r['bar']:,.0f}x; CPU engine {r['cpu_x_real_time']:,.0f}x "
              "per clip, all threads)")  # fmt: skip
    return rows


class _Prescored:
    """An analysis whose every speed was scored beforehand (as detect_batch's device scores are): the host search
    then only ranks, decodes and measures presence."""

    def __init__(self, an: Any, tables: Any, ng: int, speeds: tuple[float, ...]) -> None:
        self.an, self.layout, self.rate, self.h, self.n = an, an.layout, an.rate, an.h, an.n
        self.pre = {}
        for s in speeds:
            pw = an.projections(s, ng, tables)
            self.pre[s] = None if pw is None else an.scores(pw[0], pw[1], tables, ng)

    def speed_scores(self, speed: float, ng: int, tables: Any) -> Any:
        return self.pre[speed]

    def projections(self, speed: float, ng: int, tables: Any) -> Any:
        return self.an.projections(speed, ng, tables)

    def scores(self, p: Any, w: Any, tables: Any, ng: int) -> Any:
        # the low-tier statistic, which the device path also computes on the host from its projections
        return self.an.scores(p, w, tables, ng)


def audio_host_decode(seconds: float = 10.0, clips: int = 8) -> dict[str, float]:
    """Host time per clip of detect_batch's decoding (audio._Search on precomputed scores, then
    audio._detection), for marked and unmarked stereo clips; no GPU needed (--audio-host)."""
    rng = np.random.default_rng(5)
    key = pm.Key.from_bytes(bytes(range(32)))  # fixed: the same clips and marks every run
    kb = audio._key_bytes(key)
    lay = audio.DEFAULT_LAYOUT
    speeds = audio.SPEEDS_DEFAULT
    tables = audio._tables(kb, lay, int(_core.ecc_coded_length(audio.PAYLOAD_BITS)))
    ng = lay.groups_for_rate(AUDIO_RATE)
    h = audio.hop_length(AUDIO_RATE)
    out = {}
    for label in ("marked", "unmarked"):
        provs = []
        for _ in range(clips):
            x = _music(rng, seconds)
            if label == "marked":
                x = audio.embed(x, AUDIO_RATE, int(rng.integers(1, 2**62)), key)
            ans = {
                sh: _Prescored(
                    audio._NativeAnalysis(x[:, sh:], AUDIO_RATE, lay, max(speeds) * 1.01), tables, ng, speeds
                )
                for sh in (0, round(0.5 * h), round(0.25 * h), round(0.75 * h))
            }

            class Prov:
                nsamples = x.shape[1]

                def __call__(self, shift: int, ans: dict = ans) -> Any:
                    return ans[shift]

            provs.append(Prov())
        t0 = time.perf_counter()
        found = 0
        for pv in provs:
            r = audio._detect_core(None, AUDIO_RATE, kb, speeds, fpr=audio.DEFAULT_FPR, analyses=pv)
            found += audio._detection(r, AUDIO_RATE, audio.DEFAULT_FPR).found
        dt = (time.perf_counter() - t0) / clips
        out[label] = dt
        print(f"  host decoding, {label} {seconds:.0f} s stereo clips ({found}/{clips} found): {dt * 1e3:.2f} ms per "
              f"clip = {seconds / dt:,.0f}x real time per host thread")  # fmt: skip
    return out


# ---- main ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=64, help="frames per batch for the throughput runs")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement")
    ap.add_argument("--quick", action="store_true", help="one photo for parity, 1080p only")
    ap.add_argument("--json", help="write every figure to this JSON file")
    ap.add_argument("--clips", type=int, default=64, help="10 s stereo 44.1 kHz clips per audio batch")
    ap.add_argument("--audio-host", action="store_true", help="only time detect_batch's host decoding (no GPU needed)")
    ap.add_argument("--image-host", action="store_true",
                    help="only time the host part of image-mode detection, full search (no GPU needed)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.image_host:
        print("(c) image-mode detection, full search: the part that stays on the host, per 1080p picture, 1 thread")
        image_host_share()
        return 0
    if args.audio_host:
        print("(e) audio: detect_batch's host part (search, Viterbi decoding, p-value, presence) per clip")
        audio_host_decode()
        return 0

    info = pm.backend_info()
    print(f"provmark {info['version']}: compiled_with_cuda={info['compiled_with_cuda']}, "
          f"devices={info['cuda_device_count']}, simd={info['simd_level']}, threads={info['num_threads']}")  # fmt: skip
    if not gpu.is_available():
        print(f"gpu_check: no usable CUDA device ({info['cuda_error']}); nothing was measured.")
        return 2
    try:
        import torch
    except ImportError:
        print("gpu_check: needs torch with CUDA to hold device arrays (pip install torch); nothing was measured.")
        return 2
    if not torch.cuda.is_available():
        print("gpu_check: torch has no CUDA device (a CPU-only torch build?); nothing was measured.")
        return 2
    t_start = time.perf_counter()
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")

    print("(a) device-to-device copy bandwidth")
    bw = copy_bandwidth(torch)
    print(f"  {bw:.0f} GB/s (bytes read + written per second)")

    print("(b) parity, CPU vs CUDA (fresh random keys)")
    par = run_parity(torch, args.quick)

    sizes = {"1080p": SIZES["1080p"]} if args.quick else SIZES
    print(f"(c) throughput, batches of {args.frames} frames, CUDA events")
    rows = run_throughput(torch, bw, args.frames, args.repeats, sizes)
    print("    CPU figures (same operations on numpy frames)")
    cpu = cpu_figures(sizes)

    print("no host copies: transfers seen by the CUDA profiler")
    try:
        trace = transfer_trace(torch)
    except Exception as e:  # the profiler is optional: say why it is missing
        print(f"  could not trace transfers: {type(e).__name__}: {e}")
        trace = {"error": str(e)}

    print(f"(e) audio: parity and batches of {args.clips} 10 s stereo 44.1 kHz clips, CUDA events")
    try:
        audio_rows = run_audio(torch, par, args.clips, args.repeats)
        audio_host_decode()
    except Exception as e:
        par.fail("audio throughput", "-", e)
        audio_rows = []

    print("(d) summary")
    hdr = (
        f"{'operation':<34} {'size':<6} {'format':<15} {'frames/s':>11} {'GB/s':>7} {'% copy':>7} "
        f"{'CPU fr/s':>9} {'x CPU':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        c = r.get("host_tiles_per_s", cpu.get((r["op"], r["size"]), math.nan))  # the sync row: the host's tiles/s
        print(f"{r['op']:<34} {r['size']:<6} {r['format']:<15} {r['frames_per_s']:>11,.0f} {r['gb_per_s']:>7.0f} "
              f"{r['pct_copy']:>6.0f}% {c:>9.1f} {r['frames_per_s'] / c:>8.0f}")  # fmt: skip
    passed = sum(r[4] for r in par.rows)
    print(f"copy bandwidth {bw:.0f} GB/s; parity {'PASSED' if par.ok else 'FAILED'} ({passed}/{len(par.rows)} "
          f"checks); total {time.perf_counter() - t_start:.0f} s")  # fmt: skip
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"device": props.name, "copy_gb_per_s": bw, "parity": par.rows, "throughput": rows,
                       "cpu_frames_per_s": {f"{k[0]} {k[1]}": v for k, v in cpu.items()}, "transfers": trace,
                       "audio": audio_rows},
                      fh, indent=1, default=str)  # fmt: skip
    return 0 if par.ok else 1


if __name__ == "__main__":
    sys.exit(main())
