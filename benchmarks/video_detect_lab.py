"""Detection experiments on cached attacked clips (docs/video.md, "Detection under heavy compression").

    python benchmarks/video_detect_lab.py prepare --cache /tmp/pmv-lab --seconds 5 --keys 2
    python benchmarks/video_detect_lab.py run --cache /tmp/pmv-lab [--methods shipped ...]

``prepare`` marks each source (the footage of benchmarks/video_common.py and one pan-and-zoom clip) with the
shipped pipeline (H.264 CRF 18) under pinned keys (sha256 of ``k<i>``) and random payloads, decodes it, applies
the heavy attacks of the issue's table with a fixed seed and stores the attacked clip's encoded bytes, so that
``run`` can compare detection methods on exactly the same inputs. Unmarked sources get the same attacks (false
detections). ``run`` prints, per attack and method, exact decodes and the deciding score.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import pickle
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import provmark as pm
import video_common as vc
from provmark.bench import attacks as A

ATTACKS = ["h264(crf=35)", "h264(crf=40)", "h264_crop_brightness(crf=30, side=0.71, factor=0.5)"]


def pinned_key(i: int) -> pm.Key:
    return pm.Key.from_bytes(hashlib.sha256(f"k{i}".encode()).digest())


def decode_rgb(path_or_bytes) -> tuple[np.ndarray, float]:
    import av

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with av.open(src) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return np.stack(frames), fps


def prepare(args) -> None:
    import video_robustness as vr

    if args.gain is not None:
        pm.video.STRENGTH_GAIN = args.gain  # the video strength profile the clips are marked with
    srcs = vc.prepared_sources(args.footage, args.sources, args.zoompan, args.seconds, args.cache)
    rng = np.random.default_rng(1234)
    names = args.attacks or ATTACKS
    for sname, src in srcs.items():
        for k in range(-1, args.keys):  # -1: the unmarked source
            out = os.path.join(args.cache, f"{sname}-k{k}.pkl")
            if os.path.exists(out):
                continue
            key = pinned_key(k if k >= 0 else 0)
            payload = rng.bytes(8)
            if k >= 0:
                dst = os.path.join(args.cache, f"{sname}-k{k}-marked.mp4")
                q = vr.mark(src, dst, key, payload)
                frames, fps = decode_rgb(dst)
            else:
                q = {}
                frames, fps = decode_rgb(src)
            rec = {"source": sname, "k": k, "payload": payload, "quality": q, "attacks": {}}
            for an in names:
                atk = A.get(an, "video")
                out_clip = atk(A.VideoClip(frames, fps), seed=int(rng.integers(1 << 30)))
                # keep the attacked clip losslessly (FFV1) so that `run` sees exactly these frames
                rec["attacks"][an] = _ffv1(out_clip.frames, out_clip.fps)
                print(f"{sname} k{k} {an}: {out_clip.frames.shape}", flush=True)
            with open(out + ".part", "wb") as fh:
                pickle.dump(rec, fh)
            os.replace(out + ".part", out)


def _ffv1(frames: np.ndarray, fps: float) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=round(fps))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return buf.getvalue()


METHODS = {}


def method(fn):
    METHODS[fn.__name__] = fn
    return fn


@method
def shipped(frames, fps, key):
    return pm.video.detect_frames(frames, key, fps=fps)


@method
def nosegments(frames, fps, key):
    return pm.video.detect_frames(frames, key, fps=fps, segments=False)


# ---- experimental detectors (nominal geometry, per-frame processing) -------------------------------------
IM = pm.image


def work_luma(frames):
    """[T, h, w] float32 luma at the detector's working size (as detect_frames computes it)."""
    return np.stack([pm.video._array_luma(f) for f in frames])


def geometry(shape_full, shape_work):
    h0, w0 = shape_full
    s = shape_work[0] / h0
    c = IM._chip_size(min(h0, w0)) * s
    return c, IM.TILE * c


def score(F, tabs):
    """(z, shift, flip) of a folded tile, as image._Search.evaluate."""
    ff = np.fft.rfft2(F)
    n = IM.TILE * IM.BINS
    best = None
    for flip, tmpl in ((False, tabs.sync_fft), (True, tabs.sync_fft_flip)):
        c = np.fft.irfft2(ff * tmpl, s=(n, n))
        k = int(np.argmax(c))
        z = float((c.flat[k] - c.mean()) / c.std())
        if best is None or z > best[0]:
            best = (z, (float(k // n), float(k % n)), flip)
    return best


class Det:
    def __init__(self, found, payload, p_value, score, details):
        self.found, self.payload, self.p_value, self.score, self.details = found, payload, p_value, score, details


def decide(F, tabs, fpr=1e-6, hyp=1):
    z, shift, flip = score(F, tabs)
    soft = tabs.soft(IM._align(F, shift, flip))
    soft = (soft / soft.std()).astype(np.float32)
    pl = pm.Payload.decode(soft, 64)
    p = IM._p_sync(z, hyp) * (IM.CRC_FALSE_ACCEPT if pl is not None else 1.0)
    ok = pl is not None and p <= fpr
    return Det(ok, pl.data if ok else None, p, z, {"decision": "nominal"})


def folds(frames, key, weight=None, den_from_mean=False):
    tabs = IM._tables(key.secret_bytes(), 64)
    Y = work_luma(frames)
    c, period = geometry(frames.shape[1:3], Y.shape[1:3])
    out = []
    den = IM._whiten(np.ascontiguousarray(Y.mean(0), np.float32), c)[1] if den_from_mean else None
    for y in Y:
        w, _ = IM._whiten(np.ascontiguousarray(y), c, den)
        out.append(IM._fold(w, period, 0.0))
    return np.stack(out), tabs, Y, c, period


@method
def meanfold(frames, fps, key):  # = the shipped nominal path on the mean
    tabs = IM._tables(key.secret_bytes(), 64)
    Y = work_luma(frames)
    c, period = geometry(frames.shape[1:3], Y.shape[1:3])
    return decide(IM._fold(IM._whiten(np.ascontiguousarray(Y.mean(0), np.float32), c)[0], period, 0.0), tabs)


@method
def wsum(frames, fps, key):
    F, tabs, *_ = folds(frames, key)
    return decide(F.sum(0), tabs)


@method
def wvar(frames, fps, key):
    F, tabs, *_ = folds(frames, key)
    v = F.reshape(len(F), -1).var(1)
    return decide((F / v[:, None, None]).sum(0), tabs)


@method
def wden(frames, fps, key):
    F, tabs, *_ = folds(frames, key, den_from_mean=True)
    return decide(F.sum(0), tabs)


def run(args) -> None:
    recs = sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl"))
    methods = args.methods or ["shipped"]
    res: dict = {}
    for fn in recs:
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if args.sources and rec["source"] not in args.sources:
            continue
        key = pinned_key(max(rec["k"], 0))
        for an, data in rec["attacks"].items():
            if args.attacks and an not in args.attacks:
                continue
            frames, fps = decode_rgb(data)
            for m in methods:
                t0 = time.perf_counter()
                det = METHODS[m](frames, fps, key)
                ok = bool(det.found and det.payload == rec["payload"])
                fp = bool(det.found) if rec["k"] < 0 else False
                r = res.setdefault(an, {}).setdefault(m, {"exact": 0, "n": 0, "fp": 0, "nu": 0})
                if rec["k"] < 0:
                    r["fp"] += fp
                    r["nu"] += 1
                else:
                    r["exact"] += ok
                    r["n"] += 1
                tag = ("FALSE+" if fp else "unmarked") if rec["k"] < 0 else ("exact" if ok else "MISS")
                print(
                    f"{rec['source']:9s} k{rec['k']:2d} {an[:28]:28s} {m:14s} {tag:8s} z {det.score:6.2f} "
                    f"p {det.p_value:.2g} {det.details.get('decision', '')} ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
    print()
    for an, ms in res.items():
        for m, r in ms.items():
            print(f"{an:55s} {m:14s} exact {r['exact']}/{r['n']}  false {r['fp']}/{r['nu']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "what",
        choices=(
            "prepare",
            "run",
            "diag",
            "files",
            "frametypes",
            "embedvariants",
            "staticweight",
            "regionweight",
            "rms",
        ),
    )
    ap.add_argument("--cache", default="/tmp/pmv-lab")
    ap.add_argument("--footage", default=None)
    ap.add_argument("--sources", nargs="*", default=None)
    ap.add_argument("--zoompan", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--keys", type=int, default=2)
    ap.add_argument("--attacks", nargs="*", default=None)
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--scales", nargs="*", default=["1"])
    ap.add_argument("--crfs", nargs="*", default=["35", "40"])
    ap.add_argument("--step", type=int, default=10, help="rms: every step-th plane")
    ap.add_argument("--no-types", action="store_true", help="files: ignore frame types")
    ap.add_argument("--gain", type=float, default=None, help="prepare: video.STRENGTH_GAIN to mark with")
    ap.add_argument("--variants", nargs="*", default=["chip1", "chip1.5", "chip2", "chip3"])
    args = ap.parse_args()
    {
        "prepare": prepare,
        "run": run,
        "diag": diag,
        "files": files,
        "frametypes": frametypes,
        "embedvariants": embedvariants,
        "staticweight": staticweight,
        "regionweight": regionweight,
        "rms": rms,
    }[args.what](args)


def bit_snr(F, tabs, payload: bytes, shift_flip=None):
    """(sync z, payload soft SNR, raw coded-bit error rate) of a folded tile at its best shift."""
    z, shift, flip = score(F, tabs) if shift_flip is None else (None, *shift_flip)
    soft = tabs.soft(IM._align(F, shift, flip))
    coded = pm.Payload(payload).encode().astype(np.float64)
    v = soft * (2 * coded - 1)
    return z, float(v.mean() / v.std()), float(np.mean(v < 0))


def diag(args) -> None:
    """Sync z / payload SNR / raw BER at the nominal geometry for whitening variants of the mean."""
    scales = [float(x) for x in args.scales]
    for fn in sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl")):
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if rec["k"] < 0 or (args.sources and rec["source"] not in args.sources):
            continue
        key = pinned_key(rec["k"])
        tabs = IM._tables(key.secret_bytes(), 64)
        for an, data in rec["attacks"].items():
            if args.attacks and an not in args.attacks:
                continue
            frames, _fps = decode_rgb(data)
            Y = work_luma(frames)
            c, period = geometry(frames.shape[1:3], Y.shape[1:3])
            m = np.ascontiguousarray(Y.mean(0), np.float32)
            row = []
            for k in scales:
                F = IM._fold(IM._whiten(m, c * k)[0], period, 0.0)
                z, snr, ber = bit_snr(F, tabs, rec["payload"])
                row.append(f"x{k:g}: z {z:5.2f} snr {snr:4.2f} ber {ber:.3f}")
            print(f"{rec['source']:9s} k{rec['k']} {an[:16]:16s} " + " | ".join(row), flush=True)


def files(args) -> None:
    """H.264 attacks as files: the marked clip re-encoded with the attack's own encoder settings
    (provmark.bench.attacks.video.encode) and checked with detect_file, which sees the frame types."""
    import tempfile

    from provmark.bench.attacks import video as V

    crfs = [int(c) for c in args.crfs]
    if args.no_types:
        pm.video.TYPE_WEIGHTS = {}  # every frame weighs 1: no type-weighted average (the plain detector)
    res: dict = {}
    tmp = tempfile.mkdtemp(prefix="pmv-lab-files-")
    for fn in sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl")):
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if args.sources and rec["source"] not in args.sources:
            continue
        k = rec["k"]
        key = pinned_key(max(k, 0))
        src = os.path.join(args.cache, f"{rec['source']}-k{k}-marked.mp4" if k >= 0 else f"{rec['source']}.mp4")
        frames, fps = decode_rgb(src)
        for crf in crfs:
            path = os.path.join(tmp, f"a{crf}.mkv")
            with open(path, "wb") as fh:
                fh.write(V.encode(frames[:, : frames.shape[1] & ~1, : frames.shape[2] & ~1], fps, "h264", crf))
            t0 = time.perf_counter()
            det = pm.video.detect_file(path, key)
            ok = bool(det.found and det.payload == rec["payload"])
            r = res.setdefault(crf, {"exact": 0, "n": 0, "fp": 0, "nu": 0})
            if k < 0:
                r["fp"] += bool(det.found)
                r["nu"] += 1
                tag = "FALSE+" if det.found else "unmarked"
            else:
                r["exact"] += ok
                r["n"] += 1
                tag = "exact" if ok else "MISS"
            print(
                f"{rec['source']:9s} k{k:2d} h264 crf {crf} detect_file {tag:8s} z {det.score:6.2f} "
                f"p {det.p_value:.2g} {det.details['decision']} ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    for crf, r in res.items():
        print(f"h264(crf={crf}) detect_file: exact {r['exact']}/{r['n']}  false {r['fp']}/{r['nu']}")


def _encode_typed(frames, fps, crf):
    """H.264 at ``crf`` with the attack's encoder settings; decoded RGB frames and their picture types."""
    import av

    from provmark.bench.attacks import video as V

    data = V.encode(frames[:, : frames.shape[1] & ~1, : frames.shape[2] & ~1], fps, "h264", crf)
    fr, types = [], []
    with av.open(io.BytesIO(data)) as c:
        for f in c.decode(video=0):
            fr.append(f.to_ndarray(format="rgb24"))
            types.append(int(f.pict_type))
    return np.stack(fr), np.array(types)


def frametypes(args) -> None:
    """Per-type weights of the average and per-second / per-GOP whitening, at the nominal geometry (sync z
    and payload soft SNR of the folded tile), after H.264 with the frame types known."""
    schemes = {
        "uniform": (1, 1, 1),
        "I4P2B1": (4, 2, 1),
        "I8P2B1": (8, 2, 1),
        "I16P2B1": (16, 2, 1),
        "I16P4B1": (16, 4, 1),
        "I8P1B0": (8, 1, 0),
        "I only": (1, 0, 0),
    }
    for fn in sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl")):
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if rec["k"] < 0 or (args.sources and rec["source"] not in args.sources):
            continue
        key = pinned_key(rec["k"])
        tabs = IM._tables(key.secret_bytes(), 64)
        frames, fps = decode_rgb(os.path.join(args.cache, f"{rec['source']}-k{rec['k']}-marked.mp4"))
        for crf in [int(c) for c in args.crfs]:
            if crf == 0:  # no attack: the marked file as it is
                fr, types = frames, np.ones(len(frames), np.int64)
            else:
                fr, types = _encode_typed(frames, fps, crf)
            Y = work_luma(fr)
            c, per = geometry(fr.shape[1:3], Y.shape[1:3])
            # per-frame sync correlation at the mean's alignment, in units of the frame's folded-tile std
            mean = np.ascontiguousarray(Y.mean(0), np.float32)
            _wm, den = IM._whiten(mean, c)
            _z, shift, flip = score(IM._fold(_wm, per, 0.0), tabs)
            T = tabs.bin_interp @ tabs.sync_tile @ tabs.bin_interp.T
            T = np.roll(T[:, ::-1] if flip else T, (int(shift[0]), int(shift[1])), axis=(0, 1))
            T /= np.linalg.norm(T)
            per_frame = []
            for y in Y:
                F = IM._fold(IM._whiten(np.ascontiguousarray(y), c, den)[0], per, 0.0)
                per_frame.append(float((F * T).sum() / F.std()))
            per_frame = np.array(per_frame)
            by_type = " ".join(
                f"{'?IPB'[t] if t < 4 else t}: {per_frame[types == t].mean():.2f} (n {int(np.sum(types == t))})"
                for t in np.unique(types)
            )
            print(f"{rec['source']:9s} k{rec['k']} crf {crf} per-frame sync correlation by type: {by_type}")

            def fold_of(sel, w, Y=Y, c=c, per=per):
                m = np.ascontiguousarray(np.tensordot(w[sel] / w[sel].sum(), Y[sel], 1), np.float32)
                return IM._fold(IM._whiten(m, c)[0], per, 0.0)

            row = []
            everything = np.arange(len(Y))
            for name, (wi, wp, wb) in schemes.items():
                w = np.select([types == 1, types == 2], [float(wi), float(wp)], float(wb))
                row.append((name, fold_of(everything, w)))
            w = np.select([types == 1, types == 2], [16.0, 2.0], 1.0)
            step = max(1, round(fps))
            secs = [np.arange(i, min(i + step, len(Y))) for i in range(0, len(Y), step)]
            row.append(("per-second I16P2B1", sum(fold_of(s, w) * w[s].sum() for s in secs)))
            cuts = [*np.flatnonzero(types == 1), len(Y)]
            gops = [np.arange(a, b) for a, b in itertools.pairwise(cuts)]
            row.append(("per-GOP I16P2B1", sum(fold_of(s, w) * w[s].sum() for s in gops)))
            cells = []
            for name, F in row:
                z, snr, _ber = bit_snr(F, tabs, rec["payload"])
                cells.append(f"{name} {z:5.2f}/{snr:4.2f}")
            n_i = int(np.sum(types == 1))
            print(f"{rec['source']:9s} k{rec['k']} crf {crf} ({n_i} I) z/snr: " + " | ".join(cells), flush=True)


def _flat_split(a, m, tile, chip, limit, target):
    """ "flatsplit" (shipped as image.LumaEmbedder's flat_rms): the mask split into its floor and its excess,
    d = p (g_floor + g_excess e), through the engine's numpy reference (image._ref_flat_delta)."""
    from provmark import _core

    p, _ = _core.image_pattern(tile, a.shape[0], a.shape[1], float(chip))
    d = IM._ref_flat_delta(p, m, target, limit).astype(np.float64)
    return np.clip(np.rint(a + d), 0, 255).astype(a.dtype)


def _flat_limit(a, out, m, how, limit, target):
    """Limit the mark's RMS on the flat pixels (texture mask at its floor) of one marked plane to ``limit`` grey
    levels. "flatcap": the whole frame's mark scaled down by the same factor (one gain per frame); "flatmove":
    only the flat pixels scaled, the textured ones scaled up to keep the frame's RMS at ``target`` (at most
    2x)."""
    d = out.astype(np.float64) - a
    fl = m <= IM.MASK_LO
    if not fl.any():
        return out
    r = float(np.sqrt(np.mean(d[fl] ** 2)))
    f = min(1.0, limit / r) if r > 0 else 1.0
    if how == "flatcap":
        d *= f
    else:
        e_flat = float(np.sum(d[fl] ** 2)) * f * f
        e_tex = float(np.sum(d[~fl] ** 2))
        want = target * target * d.size
        k = min(2.0, np.sqrt(max(want - e_flat, 0.0) / e_tex)) if e_tex > 0 else 1.0
        d[fl] *= f
        d[~fl] *= max(k, 1.0)
    return np.clip(np.rint(a + d), 0, 255).astype(a.dtype)


def embedvariants(args) -> None:
    """Embedding-side variants on the prepared sources (key 0, strength = the image default times the gain):
    chip size multiples (chipX), texture mask shapes (mask-sqrt, mask-flat, mask-pow1.5), amplitude gains
    (gainX) and limits on flat pixels (flatcapF, flatmoveF: _flat_limit; flatsplitF: _flat_split, the shipped
    form; at the video gain); the clip is marked
    through video_io.transcode (CRF 18), attacked with H.264 and read at its
    nominal geometry (sync z and payload soft SNR of the mean's folded tile)."""
    from provmark import _core
    from provmark.media import video_io as vio

    for sname in args.sources or ["bikes", "megamind"]:
        src = os.path.join(args.cache, f"{sname}.mp4")
        info = vio.probe(src)
        rng = np.random.default_rng(7)
        key = pinned_key(0)
        payload = rng.bytes(8)
        tabs = IM._tables(key.secret_bytes(), 64)
        emb = IM.LumaEmbedder(info.width, info.height, payload, key)
        for var in args.variants:
            chip, target, mask = emb.chip, emb._target, "image"
            if var.startswith("chip"):
                chip *= float(var[4:])
            elif var.startswith("gain"):
                target *= float(var[4:])
            elif var.startswith("mask-"):
                mask = var[5:]
            flat = None  # flatcapF / flatmoveF: the mark's RMS on mask-floor (flat) pixels limited to F grey levels
            if var.startswith(("flatcap", "flatmove", "flatsplit")):
                how = next(h for h in ("flatcap", "flatmove", "flatsplit") if var.startswith(h))
                flat = (how, float(var[len(how) :]))
                target *= pm.video.STRENGTH_GAIN  # on the shipped video amplitude
            se = [0.0, 0]
            band = [np.zeros(2) for _ in range(3)]  # mark energy, pixels: mask at its floor, in (1, 1.5], above

            def op(frame, idx, chip=chip, target=target, mask=mask, se=se, tile=emb._tile, flat=flat, band=band):
                lv = vio.luma_view(frame)
                a = np.ascontiguousarray(lv.y)
                m = IM._mask(IM._luma(a))
                if mask == "sqrt":
                    m = np.sqrt(m).astype(np.float32)
                elif mask == "flat":
                    m = np.ones_like(m)
                elif mask == "pow1.5":
                    m = (m**1.5).astype(np.float32)
                out = _core.image_embed_apply(a, m, tile, float(chip), float(target))
                if flat is not None:
                    if flat[0] == "flatsplit":
                        out = _flat_split(a, m, tile, chip, flat[1], target)
                    else:
                        out = _flat_limit(a, out, m, flat[0], flat[1], target)
                d = out.astype(np.float64) - a
                se[0] += float((d * d).sum())
                se[1] += d.size
                for j, sel in enumerate((m <= IM.MASK_LO, (m > IM.MASK_LO) & (m <= 1.5), m > 1.5)):
                    band[j] += (float((d[sel] ** 2).sum()), int(sel.sum()))
                lv.y[...] = out

            dst = os.path.join(args.cache, f"variant-{sname}.mp4")
            vio.transcode(src, dst, op, audio="copy", workers=1, overwrite=True)
            psnr = 10 * np.log10(255**2 / (se[0] / se[1]))
            frames, fps = decode_rgb(dst)
            cells = []
            for crf in [int(c) for c in args.crfs]:
                out = A.get(f"h264(crf={crf})", "video")(A.VideoClip(frames, fps), seed=1)
                Y = work_luma(out.frames)
                s = Y.shape[1] / out.frames.shape[1]
                per = IM.TILE * chip * s
                m = np.ascontiguousarray(Y.mean(0), np.float32)
                z, snr, _ber = bit_snr(IM._fold(IM._whiten(m, per / IM.TILE)[0], per, 0.0), tabs, payload)
                cells.append(f"crf {crf}: z {z:5.2f} snr {snr:4.2f}")
            rms = "/".join(f"{np.sqrt(e / max(k, 1)):.2f}" for e, k in band)
            head = f"{sname} {var:10s} mark PSNR {psnr:.2f} dB, RMS flat/near/textured {rms}"
            print(head + " | " + " | ".join(cells), flush=True)


def staticweight(args) -> None:
    """Weight the whitened mean by temporal stability, 1 / (1 + (tv / tau)^2) with tv the per-pixel temporal
    standard deviation of the working luma (smoothed at 2 chips): does the mark live in static regions?"""
    from scipy import ndimage

    for fn in sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl")):
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if rec["k"] < 0 or (args.sources and rec["source"] not in args.sources):
            continue
        key = pinned_key(rec["k"])
        tabs = IM._tables(key.secret_bytes(), 64)
        for an in args.attacks or ["h264(crf=35)", "h264(crf=40)"]:
            fr, _fps = decode_rgb(rec["attacks"][an])
            Y = work_luma(fr)
            c, per = geometry(fr.shape[1:3], Y.shape[1:3])
            wm, _den = IM._whiten(np.ascontiguousarray(Y.mean(0), np.float32), c)
            tv = ndimage.gaussian_filter(Y.std(0), 2 * c)
            cells = []
            for tau in [None, 1, 3, 10, 30]:
                wmap = 1.0 if tau is None else 1.0 / (1.0 + (tv / tau) ** 2)
                F = IM._fold(np.ascontiguousarray(wm * wmap, np.float32), per, 0.0)
                z, snr, _ber = bit_snr(F, tabs, rec["payload"])
                cells.append(f"tau {tau}: {z:5.2f}/{snr:4.2f}")
            print(f"{rec['source']:9s} k{rec['k']} {an} z/snr: " + " | ".join(cells), flush=True)


def _region_folds(w, period, size):
    """Summed (not averaged) folds of square regions ``size`` px wide of the whitened plane ``w``, and the bin
    counts of the whole plane: [(row, col, summed fold)], counts."""
    n = IM.TILE * IM.BINS
    ys, xs = np.indices(w.shape)
    iv = np.floor((ys + 0.5) * n / period).astype(np.int64) % n
    iu = np.floor((xs + 0.5) * n / period).astype(np.int64) % n
    idx = iv * n + iu
    regs = []
    for y0 in range(0, w.shape[0], size):
        for x0 in range(0, w.shape[1], size):
            sl = (slice(y0, y0 + size), slice(x0, x0 + size))
            s = np.bincount(idx[sl].ravel(), weights=w[sl].ravel().astype(np.float64), minlength=n * n)
            regs.append((y0 // size, x0 // size, s.reshape(n, n)))
    return regs, np.bincount(idx.ravel(), minlength=n * n).reshape(n, n)


def _chips(folded, tabs, shift, flip):
    """The 1024 chip values of a folded tile at the alignment (shift, flip)."""
    return (tabs.bin_interp.T @ IM._align(folded, shift, flip) @ tabs.bin_interp).ravel()


def _chip_snr(chips, tabs, sign):
    """Payload soft SNR of chip values: mean / std of the coded bits' soft values times their true signs."""
    v = (chips[tabs.pay_idx] * tabs.carrier).sum(0) * sign
    return float(v.mean() / v.std())


def regionweight(args) -> None:
    """Maximum-ratio combining of regions: does the codec keep the mark unevenly enough over the frame that
    weighting each region (one tile period square) of the whitened mean by its mark amplitude / residual
    variance raises the payload SNR? "oracle": amplitudes from the true chips (key and payload known);
    "sync": amplitudes estimated from the region's sync chips alone (what a detector could do), smoothed over
    3 x 3 regions; "base": equal weights (the shipped fold)."""
    from scipy import ndimage

    for fn in sorted(f for f in os.listdir(args.cache) if f.endswith(".pkl")):
        with open(os.path.join(args.cache, fn), "rb") as fh:
            rec = pickle.load(fh)
        if rec["k"] < 0 or (args.sources and rec["source"] not in args.sources):
            continue
        tabs = IM._tables(pinned_key(rec["k"]).secret_bytes(), 64)
        coded = pm.Payload(rec["payload"]).encode()
        true = tabs.tile(coded).ravel()
        sign = 2.0 * coded.astype(np.float64) - 1.0
        for an in args.attacks or ["h264(crf=35)", "h264(crf=40)"]:
            fr, _fps = decode_rgb(rec["attacks"][an])
            Y = work_luma(fr)
            c, per = geometry(fr.shape[1:3], Y.shape[1:3])
            wm, _den = IM._whiten(np.ascontiguousarray(Y.mean(0), np.float32), c)
            regs, cnt = _region_folds(wm, per, max(8, round(per)))
            cnt = np.maximum(cnt, 1)
            z, shift, flip = score(sum(r[2] for r in regs) / cnt, tabs)

            C = [_chips(r[2] / cnt, tabs, shift, flip) for r in regs]
            shape = (max(r[0] for r in regs) + 1, max(r[1] for r in regs) + 1)
            amp, var, syn = np.zeros(shape), np.ones(shape), np.zeros(shape)
            for (iy, ix, _), ch in zip(regs, C, strict=True):
                amp[iy, ix] = ch @ true / (true @ true)
                var[iy, ix] = np.var(ch - amp[iy, ix] * true) + 1e-30
                syn[iy, ix] = ch[tabs.sync_idx] @ tabs.sync_sign / tabs.sync_idx.size
            syn_s, var_s = (
                ndimage.uniform_filter(syn, 3, mode="nearest"),
                ndimage.uniform_filter(var, 3, mode="nearest"),
            )
            oracle = sum(amp[iy, ix] / var[iy, ix] * ch for (iy, ix, _), ch in zip(regs, C, strict=True))
            sync = sum(max(syn_s[iy, ix], 0.0) / var_s[iy, ix] * ch for (iy, ix, _), ch in zip(regs, C, strict=True))
            print(
                f"{rec['source']:9s} k{rec['k']} {an:13s} {len(regs):3d} regions, z {z:5.2f}, payload snr: "
                f"base {_chip_snr(sum(C), tabs, sign):.2f} oracle {_chip_snr(oracle, tabs, sign):.2f} "
                f"sync {_chip_snr(sync, tabs, sign):.2f}, "
                f"amplitude spread (std / mean) {amp.std() / max(amp.mean(), 1e-9):.2f}",
                flush=True,
            )


def rms(args) -> None:
    """RMS of the mark (grey levels) that the shipped frame embedder puts on every 10th luma plane of the
    prepared sources, against its target (image.TARGET_RMS x video.STRENGTH_GAIN), for keys k0 and k1."""
    import av

    from provmark.media import video_io as vio

    target = IM.TARGET_RMS * pm.video.STRENGTH_GAIN
    for sname in args.sources or ["vtest"]:
        with av.open(os.path.join(args.cache, f"{sname}.mp4")) as c:
            ys = [np.ascontiguousarray(vio.luma_view(f).y) for f in c.decode(video=0)]
        for k in (0, 1):
            emb = pm.video.FrameEmbedder(ys[0].shape[1], ys[0].shape[0], bytes(8), pinned_key(k))
            r = []
            for y in ys[:: args.step]:
                d = emb.push(y).astype(np.float64) - y
                r.append(float(np.sqrt(np.mean(d * d))))
            print(f"{sname} k{k}: target {target:.3f}, every {args.step}th plane: " + " ".join(f"{v:.3f}" for v in r))


if __name__ == "__main__":
    main()
