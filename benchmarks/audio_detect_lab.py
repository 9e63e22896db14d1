"""Detection-side experiments for provmark.audio on a fixed, cached set of attacked windows (docs/audio.md,
section 8 "Detection lab").

    nice -n 10 python benchmarks/audio_detect_lab.py prepare --cache /tmp/pma-lab --tracks 6 --speech 2
    nice -n 10 python benchmarks/audio_detect_lab.py run --cache /tmp/pma-lab --methods base,vm_g,...

``prepare`` marks each track (the ETR music and klettres/alsa speech of benchmarks/audio_common.py) with the
shipped embedder under a pinned key and payload (the same per-track seeds as benchmarks/audio_robustness.py),
runs each attack once through the very functions of audio_robustness.ATTACKS (ffmpeg CLI codecs, noise,
filters), and stores --windows random 10 s windows of the attacked audio (float32) with the true block
alignment (codec delays measured by cross-correlation). Unmarked windows of every track are stored too.
The embedded format is untouched: only the detector varies.

``run`` decodes every cached window with each method. A method replays provmark.audio._detect_core's search
(speeds nearest 1 first, the 3 best phases per speed, early exit, the 1/2, 1/4, 3/4 hop re-analyses, the
same p-value and ``found`` rule) with its own search options (which speeds the re-analyses use, a second
family of sync statistics, second-chance decodings) and soft values for the Viterbi decoder. The sync
statistic itself is never changed, so its null bound holds; every extra statistic counts in n_tests and
every extra decoding in the CRC term's ``tried``. ``base`` is the detector before docs/audio.md section 8,
``shipped`` the detector now; ``--check`` verifies ``--check-method`` (default ``shipped``) against
provmark.audio.detect window by window. Printed per attack and method: exact decodes (found and the right
payload), decodes at the true alignment ("oracle": what a perfect sync search would give), the soft SNR q
of the payload at the true alignment (mean / std of the sign-corrected soft values per coded bit), the mean
sync z at the true alignment, and on unmarked windows the largest sync z and any false detection.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEFAULT_ATTACKS = "clean,mp3_64,aac_64,opus_32,noise_30db,noise_20db,mp3_32,opus_16,noise_10db,lowpass_4k,echo"


# ----------------------------------------------------------------------------------------------------------
# prepare
# ----------------------------------------------------------------------------------------------------------
def _pinned(seed: int):
    """Key and payload of track `seed`, as benchmarks/audio_robustness.py draws them."""
    from provmark import Key

    key = Key.from_bytes(bytes((seed * 7 + i) % 256 for i in range(32)))
    rng = np.random.default_rng(seed)
    payload = int(rng.integers(0, 2**63))
    return key, payload, rng


def _lag(y: np.ndarray, ya: np.ndarray, sr: int, max_lag: int = 8192) -> int:
    """Delay of `ya` against `y` in samples (ya[i] ~ y[i - lag]), from 10 s of the first channel."""
    a = y[0, sr : 11 * sr].astype(np.float64)
    b = ya[0, sr : 11 * sr].astype(np.float64)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    nf = 1 << math.ceil(math.log2(2 * n))
    c = np.fft.irfft(np.fft.rfft(b, nf) * np.conj(np.fft.rfft(a, nf)), nf)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    vals = np.r_[c[: max_lag + 1], c[-max_lag:]]
    return int(lags[int(np.argmax(vals))])


def prepare(args) -> None:
    import audio_robustness as R
    import provmark.audio as A
    from audio_common import music_tracks, speech_tracks

    os.makedirs(args.cache, exist_ok=True)
    attacks = [a for a in args.attacks.split(",") if a]
    for a in attacks:
        if a not in R.ATTACKS:
            raise SystemExit(f"unknown attack {a!r} (choose from {', '.join(R.ATTACKS)})")
    tracks = music_tracks(min_seconds=args.seconds * 0.5)[: args.tracks] + speech_tracks(
        args.speech, seconds=args.seconds
    )
    t0 = time.time()
    for i, (name, x, sr) in enumerate(tracks):
        key, payload, rng = _pinned(i)
        if args.window_seed:  # another draw of windows (a held-out set), same keys and payloads
            rng = np.random.default_rng([i, args.window_seed])
        x = x[:, : int(args.seconds * sr)]
        y = A.embed(x, sr, payload, key)
        block = A.DEFAULT_LAYOUT.block_hops * A.hop_length(sr)
        wl = 10 * sr
        for an in [*attacks, "unmarked"]:
            if an == "unmarked":
                ya, sra, lag = x, sr, 0
            else:
                f, win, search, _ = R.ATTACKS[an]
                if win != 10 or search:
                    raise SystemExit(f"{an}: the lab handles 10 s windows at the nominal speed only")
                ya, sra = f(y, sr)
                if sra != sr:
                    raise SystemExit(f"{an}: the lab handles attacks that keep the sample rate only")
                lag = _lag(y, ya, sr)
            s0 = rng.integers(0, max(1, ya.shape[1] - wl), size=args.windows)
            wins = np.stack([ya[:, s : s + wl] for s in s0]).astype(np.float32)
            offset = (lag - s0) % block  # where a payload block starts in each window, in samples
            path = os.path.join(args.cache, f"{i:02d}_{an}.npz")
            tmp = path + ".tmp.npz"
            np.savez(
                tmp,
                windows=wins,
                s0=s0,
                offset=offset,
                lag=lag,
                sr=sr,
                payload=np.frombuffer(payload.to_bytes(8, "big"), dtype=np.uint8),
                key=np.frombuffer(key.secret_bytes(), dtype=np.uint8),
                name=name,
                attack=an,
            )
            os.replace(tmp, path)
        print(f"{i:02d} {name[:20]:20s} done ({time.time() - t0:.0f} s), lags: see the npz files", flush=True)


# ----------------------------------------------------------------------------------------------------------
# detection variants
# ----------------------------------------------------------------------------------------------------------
class Ctx:
    """One window under one key: analyses per sub-hop shift, projections per (shift, speed), all memoised
    (shared by every method, since methods only change the decoder's soft values)."""

    def __init__(self, x: np.ndarray, sr: int, kb: bytes):
        import provmark.audio as A

        self.A = A
        self.x, self.sr, self.kb = x, sr, kb
        self.layout = A.DEFAULT_LAYOUT
        self.c = A._core()
        self.n_coded = int(self.c.ecc_coded_length(A.PAYLOAD_BITS))
        self.tables = A._tables(kb, self.layout, self.n_coded)
        self.ng = self.layout.groups_for_rate(sr)
        self.h = A.hop_length(sr)
        self.speeds = A.SPEEDS_DEFAULT
        self.max_scale = max(self.speeds) * 1.01
        t = self.tables
        self.data = ~t.is_sync[:, : self.ng]
        self.bit_idx = t.bit[:, : self.ng][self.data]
        self.sync_sign = np.where(t.is_sync[:, : self.ng], 1.0 - 2.0 * t.sync_bit[:, : self.ng], 0.0)
        self._an: dict[int, object] = {}
        self._sc: dict[tuple[int, float], tuple] = {}
        self._e: dict[tuple[int, float], np.ndarray] = {}

    def an(self, shift: int):
        a = self._an.get(shift)
        if a is None:
            a = self.A._NativeAnalysis(self.x[:, shift:], self.sr, self.layout, max_scale=self.max_scale)
            self._an[shift] = a
        return a

    def scores(self, shift: int, speed: float):
        """(p, w, z [P], term function) of the engine at (shift, speed), or None."""
        k = (shift, speed)
        if k not in self._sc:
            an = self.an(shift)
            pw = an.projections(speed, self.ng, self.tables)
            if pw is None:
                self._sc[k] = None
            else:
                z, term = an.scores(pw[0], pw[1], self.tables, self.ng)
                self._sc[k] = (pw[0], pw[1], z, term)
        return self._sc[k]

    def scores_lowtier(self, shift: int, speed: float) -> np.ndarray:
        """Sync z [P] of the low-tier groups alone (a second family of valid sync statistics)."""
        k = ("lo", shift, speed)
        if k not in self._sc:
            p, w = self.scores(shift, speed)[:2]
            t = self.tables
            sign = np.where(t.is_sync, 1.0 - 2.0 * t.sync_bit, 0.0)
            sign[:, self.layout.low_tier_groups :] = 0.0
            lay = self.layout
            self._sc[k] = self.c.audio_fold(p, w, t.dither, sign, lay.step, lay.cell_hops)[2]
        return self._sc[k]

    def energy(self, shift: int, speed: float) -> np.ndarray:
        """Band energies per hop at `speed` ([hops, bands]), as the engine's _Analysis.band_energy."""
        k = (shift, speed)
        if k not in self._e:
            self._e[k] = self.an(shift).band_energy(speed)
        return self._e[k]


def fold_index(nj: int, m: int, layout) -> tuple[np.ndarray, np.ndarray]:
    """Hops of the instances of block cell t at phase m: j[k, t] (k-th repeat) and its validity mask."""
    P, ch, T = layout.block_hops, layout.cell_hops, layout.block_cells
    base = (m + ch * np.arange(T)) % P
    K = max(1, -(-nj // P))
    j = base[None, :] + P * np.arange(K)[:, None]
    return np.minimum(j, nj - 1), j < nj


def _angles(ctx: Ctx, p: np.ndarray, m: int):
    """Residual angles theta[k, t, g] = 2 pi (p / step - dither) of the instances at phase m, and the mask."""
    j, ok = fold_index(p.shape[0], m, ctx.layout)
    th = 2.0 * np.pi * (p[j] / ctx.layout.step - ctx.tables.dither[None, :, : ctx.ng])
    return j, ok, th


def _soft_from_term(ctx: Ctx, term: np.ndarray, group_weights: bool = True) -> np.ndarray:
    if group_weights:
        term = term * ctx.A._group_reliability(term, ctx.sync_sign)[None, :]
    return -np.bincount(ctx.bit_idx, weights=term[ctx.data], minlength=ctx.n_coded)


def soft_base(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
    """The engine: folded w cos(theta) at phase m, per-group sync-evidence weights, summed per coded bit."""
    _p, _w, _z, term = ctx.scores(shift, speed)
    return _soft_from_term(ctx, term(m))


def _inverse_a2(r2: np.ndarray) -> np.ndarray:
    """von Mises concentration kappa with I2(kappa) / I0(kappa) = r2 (table lookup; r2 <= 0 -> 0)."""
    from scipy.special import ive

    kap = np.linspace(0.0, 60.0, 6001)
    a2 = ive(2, kap) / ive(0, kap)
    return np.interp(np.clip(r2, 0.0, a2[-1]), a2, kap)


def _moving_mean(v: np.ndarray, ok: np.ndarray, radius: int) -> np.ndarray:
    """Mean of v over the instances within +-radius cells in time (same group), v/ok [n, ng] in time order."""
    vv = np.where(ok, v, 0.0)
    cs = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(vv, axis=0)])
    cn = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(ok.astype(np.float64), axis=0)])
    n = v.shape[0]
    lo = np.clip(np.arange(n) - radius, 0, n)
    hi = np.clip(np.arange(n) + radius + 1, 0, n)
    return (cs[hi] - cs[lo]) / np.maximum(cn[hi] - cn[lo], 1.0)


def make_vm(radius: int | None, group_weights: bool, mapping: str = "kappa", use_w: bool = True):
    """Blind von Mises reliability: cos(2 theta) does not depend on the bit (theta ~ 0 or pi), so its mean over
    a group's instances (radius None: the whole window; else +-radius cells in time) estimates the group's
    local concentration kappa (I2(kappa)/I0(kappa) = mean cos 2 theta). The soft value of an instance is then
    its von Mises log-likelihood ratio, 2 kappa cos(theta), instead of cos(theta) with uniform weights.
    mapping "kappa": weight kappa; "r2": weight max(mean cos 2 theta, 0)."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        p, w, _z, term = ctx.scores(shift, speed)
        j, ok, th = _angles(ctx, p, m)
        K, T, G = th.shape
        c2 = np.cos(2.0 * th)
        okg = np.broadcast_to(ok[..., None], th.shape) & (w[j] > 0)
        if radius is None:
            r2 = np.where(okg, c2, 0.0).sum(axis=(0, 1)) / np.maximum(okg.sum(axis=(0, 1)), 1)
            r2 = np.broadcast_to(r2[None, None], th.shape)
        else:
            # time order of instances: k-th repeat, then cell t (hop m + 4 t + k P)
            order = np.argsort(j.reshape(-1) + 1e-3 * np.arange(K * T), kind="stable")
            flat_c2 = c2.reshape(K * T, G)[order]
            flat_ok = okg.reshape(K * T, G)[order]
            mm = _moving_mean(flat_c2, flat_ok, radius)
            r2 = np.empty_like(mm)
            r2[order] = mm
            r2 = r2.reshape(K, T, G)
        kap = _inverse_a2(r2) if mapping == "kappa" else np.maximum(r2, 0.0)
        ww = (w[j] if use_w else 1.0) * kap * ok[..., None]
        term = (ww * np.cos(th)).sum(axis=0)  # [T, G]
        return _soft_from_term(ctx, term, group_weights)

    return soft


def make_ss(alpha: float, q: float, beta: float = 0.05, white: bool = False, group_weights: bool = True):
    """Spectral subtraction before the log: each band's noise floor (its q-th percentile of per-hop energy over
    the window; white=True: one flat noise density from the quietest band, times each band's width) times
    alpha is removed from the hop energies (at most 1 - beta of them), then log cell energies, projections and
    folded cos(theta) as the engine (weights w of the unsubtracted energies)."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        A, lay = ctx.A, ctx.layout
        _p0, w, _z, _term = ctx.scores(shift, speed)
        e = ctx.energy(shift, speed)
        if white:
            an = ctx.an(shift)
            width = np.diff(an.edges * speed).astype(np.float64)
            dens = np.percentile(e, q, axis=0) / width
            fl = dens.min() * width
        else:
            fl = np.percentile(e, q, axis=0)
        e2 = np.maximum(e - alpha * fl[None, :], beta * e)
        p, _w = A._projections(e2, ctx.ng, ctx.tables, ctx.an(shift).n, lay)
        nj = min(p.shape[0], w.shape[0])
        j, ok, th = _angles(ctx, p[:nj], m)
        term2 = ((w[:nj][j]) * np.cos(th) * ok[..., None]).sum(axis=0)
        return _soft_from_term(ctx, term2, group_weights)

    return soft


def make_var(sigma0: float, subtract: bool = True, group_weights: bool = True):
    """Variance-model weights against additive noise (provmark.audio._noise_model, which ships sigma0 0.3 as
    the search's last second-chance pass): the noise floor subtracted (unless subtract=False), each instance
    weighted by mean / variance of cos(theta) under the log-energy noise it leaves."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        A = ctx.A
        p, w = A._noise_model(ctx.an(shift), speed, ctx.ng, ctx.tables, ctx.layout, sigma0, subtract)
        return _soft_from_term(ctx, A._phase_term(p, w, m, ctx.tables, ctx.ng, ctx.layout), group_weights)

    return soft


def make_ss_vm(alpha: float, q: float, radius: int | None, white: bool = False):
    """Spectral subtraction (make_ss) and the blind von Mises weights (make_vm) together."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        A, lay = ctx.A, ctx.layout
        _p0, w, z, term = ctx.scores(shift, speed)
        e = ctx.energy(shift, speed)
        if white:
            an = ctx.an(shift)
            width = np.diff(an.edges * speed).astype(np.float64)
            fl = (np.percentile(e, q, axis=0) / width).min() * width
        else:
            fl = np.percentile(e, q, axis=0)
        e2 = np.maximum(e - alpha * fl[None, :], 0.05 * e)
        p, _w = A._projections(e2, ctx.ng, ctx.tables, ctx.an(shift).n, lay)
        nj = min(p.shape[0], w.shape[0])
        saved = ctx._sc[(shift, speed)]
        ctx._sc[(shift, speed)] = (p[:nj], w[:nj], z, term)
        try:
            return make_vm(radius, True)(ctx, shift, speed, m)
        finally:
            ctx._sc[(shift, speed)] = saved

    return soft


def make_nb(lam: float, inner):
    """Soft-combine the candidate phase with its neighbours m-1 and m+1 (cells read one hop early/late),
    weight lam each, every reading decoded-side only."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        P = ctx.layout.block_hops
        s = inner(ctx, shift, speed, m)
        for d in (-1, 1):
            s = s + lam * inner(ctx, shift, speed, (m + d) % P)
        return s

    return soft


def make_nogw():
    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        _p, _w, _z, term = ctx.scores(shift, speed)
        return _soft_from_term(ctx, term(m), group_weights=False)

    return soft


def make_rot(blind: bool, group_weights: bool = True):
    """Per-group rotation: a linear filter or a codec's level bias shifts a group's projections by a constant
    (the four bands are scaled differently), which turns every residual angle of the group by the same phi_g.
    Estimate phi_g at the candidate phase and decode Re(e^{-i phi_g} sum w e^{i theta}). blind=False: phi_g
    = arg of the sign-corrected sum over the group's sync instances; blind=True: 2 phi_g = arg of the sum of
    w e^{2 i theta} over all the group's instances (the bit drops out of the doubled angle), the sync sum
    choosing between phi_g and phi_g + pi."""

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> np.ndarray:
        p, w, _z, _term = ctx.scores(shift, speed)
        j, ok, th = _angles(ctx, p, m)
        ww = w[j] * ok[..., None]
        zc = (ww * np.exp(1j * th)).sum(axis=0)  # [T, G] complex folded terms
        ss = (zc * ctx.sync_sign).sum(axis=0)  # [G]
        if blind:
            d2 = (ww * np.exp(2j * th)).sum(axis=(0, 1))
            phi = 0.5 * np.angle(d2)
            flip = np.real(ss * np.exp(-1j * phi)) < 0
            phi = np.where(flip, phi + np.pi, phi)
        else:
            phi = np.angle(ss)
        t2 = np.real(zc * np.exp(-1j * phi)[None, :])
        return _soft_from_term(ctx, t2, group_weights)

    return soft


METHODS = {
    "base": soft_base,
    "ref1": (soft_base, {"refine": "best+1"}),
    "reftop": (soft_base, {"refine": "top"}),
    "nc6": (soft_base, {"n_cand": 6}),
    "nc10": (soft_base, {"n_cand": 10}),
    "lo": (soft_base, {"lowtier": True}),
    "rot_s": make_rot(False),
    "rot_b": make_rot(True),
    "rot_b_top": (make_rot(True), {"refine": "top"}),
    "rot_b_top_lo": (make_rot(True), {"refine": "top", "lowtier": True}),
    "nogw": make_nogw(),
    "vm_g": make_vm(None, True),
    "vm_g_nogw": make_vm(None, False),
    "vm_l8": make_vm(8, True),
    "vm_l16": make_vm(16, True),
    "vm_l32": make_vm(32, True),
    "vm_l16_nogw": make_vm(16, False),
    "vm_l16_r2": make_vm(16, True, "r2"),
    "vm_l16_now": make_vm(16, True, use_w=False),
    "ss_1_10": make_ss(1.0, 10.0),
    "ss_05_10": make_ss(0.5, 10.0),
    "ss_1_5": make_ss(1.0, 5.0),
    "ss_w_1_10": make_ss(1.0, 10.0, white=True),
    "ss_w_1_2": make_ss(1.0, 2.0, white=True),
    "ssvm_l16": make_ss_vm(1.0, 10.0, 16),
    "ssvm_w_l16": make_ss_vm(1.0, 10.0, 16, white=True),
    "nb05": make_nb(0.5, soft_base),
    "nb05_vm_l16": make_nb(0.5, make_vm(16, True)),
}


def make_multi(*names):
    """Decode each candidate with several soft-value variants in turn (each one a CRC-checked decoding that
    counts in the p-value's `tried`), stopping at the first that passes the CRC."""
    fns = [METHODS[n] for n in names]

    def soft(ctx: Ctx, shift: int, speed: float, m: int) -> list:
        return [f(ctx, shift, speed, m) for f in fns]

    return soft


METHODS["m_ssw"] = make_multi("base", "ss_w_1_10")
METHODS["m_nogw"] = make_multi("base", "nogw")
METHODS["m_ssw_nogw"] = make_multi("base", "ss_w_1_10", "nogw")
METHODS["m_ssw2"] = make_multi("base", "ss_w_1_10", "ss_05_10")
for _k in (3, 6):
    METHODS[f"RLF{_k}+nogw"] = (soft_base, {"refine": "best+1", "lowtier": True, "final": ("nogw",), "final_k": _k})
    METHODS[f"RLF{_k}+nogw+ssw"] = (
        soft_base,
        {"refine": "best+1", "lowtier": True, "final": ("nogw", "ss_w_1_10"), "final_k": _k},
    )
    METHODS[f"RF{_k}+nogw+ssw"] = (soft_base, {"refine": "best+1", "final": ("nogw", "ss_w_1_10"), "final_k": _k})
for _s0 in (0.3, 0.6, 1.0):
    METHODS[f"var{_s0}"] = make_var(_s0)
METHODS["var0.6_nosub"] = make_var(0.6, subtract=False)

# The detector since this lab (provmark.audio._Search): sub-hop re-analyses at the nominal speed too ("nominal"),
# a second-chance decoding without the group weights ("2nd"), the low-tier sync family: "shipped". Variants add
# second-chance soft values (white-noise spectral subtraction "ssw", the variance model "var<sigma0>").
_NOM = {"refine": "nominal"}
METHODS["nominal"] = (soft_base, _NOM)
METHODS["nominal+2nd"] = (soft_base, {**_NOM, "final": ("nogw",)})
METHODS["nominal+2nd+lo_ungated"] = (soft_base, {**_NOM, "final": ("nogw",), "lowtier": True})
_SHIP = {**_NOM, "lowtier": True, "lo_gate": True}
METHODS["shipped"] = (soft_base, {**_SHIP, "final": ("nogw",)})
for _alt in ("ss_w_1_10", "var0.3", "var0.6", "var1.0", "var0.6_nosub"):
    _tag = "ssw" if _alt == "ss_w_1_10" else _alt
    METHODS[f"nominal+2nd+{_tag}"] = (soft_base, {**_NOM, "final": ("nogw", _alt)})
    METHODS[f"shipped+{_tag}"] = (soft_base, {**_SHIP, "final": ("nogw", _alt)})
METHODS["ss_w_07_10"] = make_ss(0.7, 10.0, white=True)
METHODS["ss_w_1_20"] = make_ss(1.0, 20.0, white=True)
METHODS["ss_w_15_10"] = make_ss(1.5, 10.0, white=True)

# The same soft values with the sub-hop re-analyses also run at the nominal speed ("R+" prefix), with the
# low-tier sync family ("RL+"), and both.
for _name, _fn in list(METHODS.items()):
    if callable(_fn):
        METHODS["R+" + _name] = (_fn, {"refine": "best+1"})
        METHODS["RL+" + _name] = (_fn, {"refine": "best+1", "lowtier": True})


def detect_with(ctx: Ctx, method, fpr: float = 1e-6) -> dict:
    """provmark.audio._detect_core + detect()'s decision, with the decoder's soft values from the method's
    soft function and its search options:

    n_cand: phases decoded per speed (engine 3); refine: speeds of the sub-hop re-analyses ("best": the best
    candidate's, as the engine; "best+1": also speed 1; "top": the distinct speeds of the candidates kept);
    refine_all: re-analyse even when a payload decoded but with confidence < 0.95 (engine) or always stop
    once decoded ("decoded"); lowtier: also rank phases by the sync statistic of the low-tier groups alone
    and decode its best phases (a second family of n_tests statistics, counted in the p-value); lo_gate: a
    candidate of the low-tier family alone only becomes the best candidate once it decodes (the shipped rule);
    final: second-chance soft values for the final_k best candidates when nothing decoded."""
    A, c = ctx.A, ctx.c
    soft_fn, opt = (method, {}) if callable(method) else method
    n_cand = opt.get("n_cand", 3)
    refine = opt.get("refine", "best")
    lowtier = opt.get("lowtier", False)
    final = [METHODS[n] for n in opt.get("final", ())]  # second-chance soft variants
    final_k = opt.get("final_k", 3)
    gate = opt.get("lo_gate", False)
    st = {"n_tests": 0, "tried": 0, "best": None, "speeds": [], "seen": []}

    def offer(cand, full: bool) -> None:
        if (full or not gate or cand.payload is not None) and A._better(cand, st["best"]):
            st["best"] = cand

    def search(shift: int, speed_list) -> None:
        cands = []
        decoded: dict = {}
        for s in sorted(speed_list, key=lambda v: abs(v - 1.0)):
            sc = ctx.scores(shift, s)
            if sc is None:
                continue
            fams = [sc[2]]
            if lowtier:
                fams.append(ctx.scores_lowtier(shift, s))
            for fam, z in enumerate(fams):
                st["n_tests"] += z.shape[0]
                for m in np.argsort(-z, kind="stable")[:n_cand]:
                    cands.append((float(z[m]), s, int(m), fam == 0))
            cands.sort(key=lambda t_: -t_[0])
            del cands[n_cand * len(fams) :]
            for zc, sc_, mc, full in cands:
                res = decoded.get((sc_, mc))
                if res is None:  # a phase ranked by both families is decoded once
                    st["seen"].append((zc, sc_, mc, shift, full))
                    softs = soft_fn(ctx, shift, sc_, mc)
                    res = decoded[(sc_, mc)] = []
                    for soft in softs if isinstance(softs, list) else [softs]:
                        payload, conf = c.ecc_decode(soft.astype(np.float32), A.PAYLOAD_BITS)
                        st["tried"] += 1  # every CRC-checked decoding counts in the p-value
                        res.append((payload, float(conf)))
                        if payload is not None:
                            break
                for payload, conf in res:
                    offer(A._Candidate(sc_, mc, zc, payload, conf, shift, None), full)
            st["speeds"] = [t_[1] for t_ in cands]
            b = st["best"]
            if (
                b is not None
                and b.payload is not None
                and A._p_value(b.z, st["n_tests"], True, st["tried"]) < fpr * 1e-6
            ):
                return

    search(0, ctx.speeds)
    top_speeds = list(st["speeds"])
    for frac in (0.5, 0.25, 0.75):
        b = st["best"]
        if b is not None and b.payload is not None and b.confidence >= 0.95:
            break
        bs = b.speed if b is not None else 1.0
        if refine == "nominal":  # the shipped engine: nominal speed, then the best speed, one search each
            shift = round(frac * ctx.h)
            if ctx.x.shape[1] - shift < 2 * ctx.h + ctx.layout.cell_hops * ctx.h:
                break
            for k, sp in enumerate(dict.fromkeys((1.0, bs))):
                b = st["best"]
                if k and b is not None and b.payload is not None and b.confidence >= 0.95:
                    break
                search(shift, (sp,))
            continue
        if refine == "best":
            rs = (bs,)
        elif refine == "best+1":
            rs = tuple(dict.fromkeys([bs, 1.0]))
        elif refine == "top":
            rs = tuple(dict.fromkeys([bs, *top_speeds]))
        else:
            raise ValueError(refine)
        shift = round(frac * ctx.h)
        if ctx.x.shape[1] - shift < 2 * ctx.h + ctx.layout.cell_hops * ctx.h:
            break
        search(shift, rs)
    b = st["best"]
    if final and b is not None and b.payload is None:
        # second chance: the best candidates overall, decoded with the alternative soft values
        for zc, sc_, mc, shift, full in sorted(st["seen"], key=lambda t_: -t_[0])[:final_k]:
            for f in final:
                payload, conf = c.ecc_decode(f(ctx, shift, sc_, mc).astype(np.float32), A.PAYLOAD_BITS)
                st["tried"] += 1
                offer(A._Candidate(sc_, mc, zc, payload, float(conf), shift, None), full)
                if payload is not None:
                    break
            if st["best"].payload is not None:
                break
    b = st["best"]
    if b is None:
        return {"found": False, "payload": None, "z": 0.0, "p": 1.0}
    decoded = b.payload is not None
    p = A._p_value(b.z, max(st["n_tests"], 1), decoded, max(st["tried"], 1))
    found = decoded and p < fpr
    return {"found": found, "payload": b.payload if found else None, "z": b.z, "p": p, "conf": b.confidence}


def oracle(ctx: Ctx, soft_fn, offset: int, payload: bytes) -> dict:
    """Decode at the true alignment (exact sub-hop shift, true phase, speed 1): ok, q, sync z there."""
    shift, m = int(offset % ctx.h), int(offset // ctx.h)
    sc = ctx.scores(shift, 1.0)
    fn = soft_fn if callable(soft_fn) else soft_fn[0]
    softs = fn(ctx, shift, 1.0, m)
    softs = softs if isinstance(softs, list) else [softs]
    decs = [ctx.c.ecc_decode(s_.astype(np.float32), ctx.A.PAYLOAD_BITS)[0] for s_ in softs]
    for f in () if callable(soft_fn) else soft_fn[1].get("final", ()):
        decs.append(ctx.c.ecc_decode(METHODS[f](ctx, shift, 1.0, m).astype(np.float32), ctx.A.PAYLOAD_BITS)[0])
    dec = payload if payload in decs else decs[0]
    soft = softs[0]
    coded = np.asarray(ctx.c.ecc_encode(payload), dtype=np.float64)
    sc_soft = soft * (2.0 * coded - 1.0)
    q = float(sc_soft.mean() / max(sc_soft.std(), 1e-12))
    return {"ok": dec == payload, "q": q, "z": float(sc[2][m])}


def run(args) -> None:
    import provmark.audio as A

    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r} (choose from {', '.join(METHODS)})")
    files = sorted(glob.glob(os.path.join(args.cache, "*.npz")))
    if not files:
        raise SystemExit(f"no cached windows under {args.cache}: run `prepare` first")
    want = set(a for a in args.attacks.split(",") if a) if args.attacks else None
    res: dict = {}  # (attack, method) -> list of dicts
    null: dict = {}  # method -> (max z, false detections, n)
    mismatch = nchk = 0
    t0 = time.time()
    for f in files:
        d = np.load(f)
        an = str(d["attack"])
        if want is not None and an not in want and an != "unmarked":
            continue
        if args.tracks is not None and int(os.path.basename(f)[:2]) not in args.tracks:
            continue
        sr, kb, payload = int(d["sr"]), d["key"].tobytes(), d["payload"].tobytes()
        for wi in range(min(len(d["windows"]), args.windows or 10**9)):
            x = d["windows"][wi].astype(np.float64)
            ctx = Ctx(x, sr, kb)
            for m in methods:
                r = detect_with(ctx, METHODS[m])
                if an == "unmarked":
                    mz, nf, n = null.get(m, (0.0, 0, 0))
                    null[m] = (max(mz, r["z"]), nf + int(r["found"]), n + 1)
                    continue
                r["exact"] = bool(r["found"] and r["payload"] == payload)
                r.update({"o_" + k: v for k, v in oracle(ctx, METHODS[m], int(d["offset"][wi]), payload).items()})
                res.setdefault((an, m), []).append(r)
            if args.check:
                det = A.detect(x, sr, kb)
                r = detect_with(ctx, METHODS[args.check_method])
                nchk += 1
                same = det.found == r["found"] and det.payload == r["payload"] and abs(det.score - r["z"]) < 1e-9
                mismatch += int(not same)
        print(f"  {os.path.basename(f)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    attacks = sorted(
        {a for a, _ in res},
        key=lambda a: DEFAULT_ATTACKS.split(",").index(a) if a in DEFAULT_ATTACKS.split(",") else 99,
    )
    print(
        f"# {args.cache}: exact decodes / windows (oracle = decoded at the true alignment); q = soft SNR of "
        f"the payload at the true alignment; z = mean sync z there. {time.time() - t0:.0f} s"
    )
    print("| attack | n | " + " | ".join(methods) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in methods) + " |")
    for a in attacks:
        n = len(res[(a, methods[0])])
        cells = []
        for m in methods:
            rr = res[(a, m)]
            ex = sum(r["exact"] for r in rr)
            orc = sum(r["o_ok"] for r in rr)
            q = np.mean([r["o_q"] for r in rr])
            cells.append(f"{ex} ({orc}) q{q:.2f}")
        z = np.mean([r["o_z"] for r in res[(a, methods[0])]])
        print(f"| {a} | {n} z{z:.1f} | " + " | ".join(cells) + " |")
    tot = [sum(sum(r["exact"] for r in res[(a, m)]) for a in attacks) for m in methods]
    print("| total exact | | " + " | ".join(str(t) for t in tot) + " |")
    for m in methods:
        if m in null:
            mz, nf, n = null[m]
            print(f"unmarked {m}: {nf}/{n} false detections, max sync z {mz:.2f}")
    if args.check:
        print(f"check: {args.check_method} vs provmark.audio.detect: {nchk - mismatch}/{nchk} windows identical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["prepare", "run"])
    ap.add_argument("--cache", default="/tmp/pma-lab")
    ap.add_argument("--tracks", type=int, default=6, help="prepare: music tracks; run: track indices (nargs)")
    ap.add_argument("--speech", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--windows", type=int, default=None, help="windows per (track, attack); prepare default 5")
    ap.add_argument("--attacks", default=None)
    ap.add_argument("--window-seed", type=int, default=0, help="prepare: 0 = the windows of audio_robustness's seeds")
    ap.add_argument("--methods", default="base")
    ap.add_argument("--check", action="store_true", help="run: verify --check-method against provmark.audio.detect")
    ap.add_argument("--check-method", default="shipped", help="the method that replays the shipped detector")
    args = ap.parse_args()
    if args.cmd == "prepare":
        args.windows = args.windows or 5
        args.attacks = args.attacks or DEFAULT_ATTACKS
        prepare(args)
    else:
        args.tracks = None
        run(args)


if __name__ == "__main__":
    main()
