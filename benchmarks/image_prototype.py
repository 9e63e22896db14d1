"""Phase-1 numpy prototype of the image watermark (measurement tool, not the shipped engine).

Tiled spread spectrum in luma: a T x T chip tile (sync chips + payload chips), bilinear chip shape, chip size
tied to the short side, texture masking. Detection: area downscale to a working size, band-pass whitening,
lattice search from the autocorrelation, folding into chip bins, FFT correlation with the sync template.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy import ndimage

T = 32  # chips per tile side
K_TILES = 6.0  # tiles across the short side at embedding
B = 4  # folding bins per chip
WORK = 512  # detector working short side (area downscale above)
CODED = 306


def tables(seed: int, coded: int = CODED):
    rng = np.random.default_rng(seed)
    n = T * T
    perm = rng.permutation(n)
    reps = (n - 300) // coded
    pay_idx = perm[: reps * coded].reshape(reps, coded)  # chip indices of each coded bit, per repetition
    sync_idx = perm[reps * coded :]
    sync_sign = rng.choice([-1.0, 1.0], size=sync_idx.size)
    carrier = rng.choice([-1.0, 1.0], size=pay_idx.shape)
    return pay_idx, sync_idx, sync_sign, carrier


def tile_values(tab, bits01):
    pay_idx, sync_idx, sync_sign, carrier = tab
    v = np.zeros(T * T)
    v[sync_idx] = sync_sign
    v[pay_idx] = carrier * (2.0 * bits01[None, :] - 1.0)
    return v.reshape(T, T)


def sync_tile(tab):
    _pay_idx, sync_idx, sync_sign, _carrier = tab
    v = np.zeros(T * T)
    v[sync_idx] = sync_sign
    return v.reshape(T, T)


def interp_matrix(n_px: int, c: float) -> np.ndarray:
    """[n_px, T]: bilinear (cyclic) weights of the chip values at pixel centres; chip k is centred at k+0.5."""
    u = (np.arange(n_px) + 0.5) / c - 0.5
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    m = np.zeros((n_px, T))
    rows = np.arange(n_px)
    np.add.at(m, (rows, i0 % T), 1.0 - f)
    np.add.at(m, (rows, (i0 + 1) % T), f)
    return m


def luma(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img.astype(np.float32)
    return (img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114).astype(np.float32)


def mask_of(y: np.ndarray) -> np.ndarray:
    hp = y - ndimage.uniform_filter(y, 3)
    act = ndimage.uniform_filter(np.abs(hp), 7)
    return act


def chip_amplitudes(tab, bits01, f_bits=None, sync_amp=1.0):
    pay_idx, sync_idx, sync_sign, carrier = tab
    v = np.zeros(T * T)
    v[sync_idx] = sync_sign * sync_amp
    f = np.ones(bits01.size) if f_bits is None else f_bits
    v[pay_idx] = carrier * (2.0 * bits01[None, :] - 1.0) * f[None, :]
    return v.reshape(T, T)


def embed(
    img: np.ndarray,
    bits01: np.ndarray,
    seed: int,
    strength: float = 1.0,
    target_rms: float = 1.75,
    gain: float = 100.0,
    m_lo: float = 1.0,
    m_hi: float = 4.0,
    informed=True,
    f_lo=0.3,
    f_hi=3.0,
    sync_amp=1.0,
):
    h, w = img.shape[:2]
    c = min(h, w) / (T * K_TILES)
    tab = tables(seed)
    Ay, Ax = interp_matrix(h, c), interp_matrix(w, c)
    y = luma(img.astype(np.float32))
    m = np.clip(mask_of(y), m_lo, m_hi)
    fb = None
    if informed:
        fb = informed_factors(y, m, Ay, Ax, tab, bits01, c, f_lo, f_hi, sync_amp)
        for _ in range(int(informed) - 1):
            tile = chip_amplitudes(tab, bits01, fb, sync_amp)
            d = m * (Ay @ tile @ Ax.T)
            d *= strength * target_rms / np.sqrt(np.mean(d * d))
            fb = informed_factors(y, m, Ay, Ax, tab, bits01, c, f_lo, f_hi, sync_amp, y_den=np.clip(y + d, 0, 255))
    tile = chip_amplitudes(tab, bits01, fb, sync_amp)
    p = Ay @ tile @ Ax.T  # [h, w]
    d = gain * m * p
    rms = np.sqrt(np.mean(d * d))
    d *= strength * min(1.0, target_rms / max(rms, 1e-9))
    out = img.astype(np.float32) + (d[..., None] if img.ndim == 3 else d)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _down(y, f):
    if f == 1:
        return y
    h2, w2 = y.shape[0] // f, y.shape[1] // f
    return y[: h2 * f, : w2 * f].reshape(h2, f, w2, f).mean(axis=(1, 3))


def informed_factors(y, m, Ay, Ax, tab, bits01, c, f_lo, f_hi, sync_amp, y_den=None):
    """Per coded bit amplitude factors that cancel the host's projection on each bit (ISS-like)."""
    f = max(1, int(np.ceil(min(y.shape) / WORK)))
    yw = _down(y, f)
    period = min(yw.shape) / K_TILES
    cw = period / T
    den = whiten_den(yw if y_den is None else _down(y_den, f), cw)
    s = 2.0 * bits01 - 1.0
    h_soft = raw_soft(fold(whiten(yw, cw, den=den), period, 0.0), tab)
    p = Ay @ chip_amplitudes(tab, bits01, None, sync_amp) @ Ax.T
    d = m * p
    d *= 1.75 / np.sqrt(np.mean(d * d))
    r_soft = raw_soft(fold(whiten(_down(d, f), cw, den=den), period, 0.0), tab) * s
    r = np.maximum(r_soft, 0.2 * np.median(r_soft))
    hm = h_soft * s
    best = None
    n_sync = tab[1].size
    for M in np.linspace(0.2, 4.0, 39) * np.median(r):
        fb = np.clip((M - hm) / r, f_lo, f_hi)
        energy = (n_sync * sync_amp**2 + tab[0].shape[0] * np.sum(fb**2)) / (n_sync * sync_amp**2 + tab[0].size)
        # after renormalisation to the RMS target every amplitude shrinks by sqrt(energy)
        worst = np.percentile((hm + fb * r / np.sqrt(energy)) / np.median(r), 2)
        if best is None or worst > best[0]:
            best = (worst, fb)
    return best[1]


# --------------------------------------------------------------------------------------------------- detect
def work_luma(img: np.ndarray):
    y = luma(img.astype(np.float32))
    h, w = y.shape
    f = max(1, int(np.ceil(min(h, w) / WORK)))
    if f > 1:
        h2, w2 = h // f, w // f
        y = y[: h2 * f, : w2 * f].reshape(h2, f, w2, f).mean(axis=(1, 3))
    return y, f


def whiten_den(y, c=4.0):
    w = ndimage.gaussian_filter(y, 0.15 * c) - ndimage.gaussian_filter(y, 0.5 * c)
    a = ndimage.gaussian_filter(np.abs(w), c)
    return a + 0.5 + 0.1 * np.median(a)


def whiten(y: np.ndarray, c=4.0, norm=True, den=None):
    w = ndimage.gaussian_filter(y, 0.15 * c) - ndimage.gaussian_filter(y, 0.5 * c)
    if norm:
        if den is None:
            a = ndimage.gaussian_filter(np.abs(w), c)
            den = a + 0.5 + 0.1 * np.median(a)
        w = w / den
    w -= w.mean()
    return w


def autocorr(w: np.ndarray, f: int = 1):
    """Spectrally flattened autocorrelation: the tile's line spectrum stands out of the smooth host spectrum."""
    h, wd = w.shape
    fh, fw = 2 * h, 2 * wd
    F = np.fft.rfft2(w, s=(fh, fw))
    p = np.abs(F) ** 2
    ps = ndimage.gaussian_filter(p, 3.0, mode="wrap")
    r = np.clip(p / (ps + 1e-12) - 1.0, -1.0, 8.0)
    # notch the 8x8 JPEG block grid of the source (period 8 / f working pixels)
    per = 8.0 / f
    for n_ax, ax in ((fh, 0), (fw, 1)):
        k = 1
        while k * n_ax / per < (n_ax if ax == 1 else n_ax / 2 + 1) and k < 64:
            c = k * n_ax / per
            for cc in (c, n_ax - c) if ax == 0 else (c,):
                i = round(cc)
                sl = slice(max(i - 1, 0), i + 2)
                if ax == 0:
                    r[sl, :] = 0.0
                elif i < r.shape[1] + 1:
                    r[:, sl] = 0.0
            k += 1
    r[0, 0] = 0.0
    a = np.fft.irfft2(r, s=(fh, fw))
    a = a - ndimage.uniform_filter(a, 7, mode="wrap")
    return a / (a.std() + 1e-12), (fh, fw)


def lattice_candidates(w: np.ndarray, n_out=8, pmin=20.0, pmax=None, f=1):
    h, wd = w.shape
    a, (fh, fw) = autocorr(w, f)
    if pmax is None:
        pmax = min(h, wd) * 0.72
    ps = np.exp(np.arange(np.log(pmin), np.log(pmax), 0.004))
    th = np.deg2rad(np.arange(-8.0, 8.01, 0.2))
    P, TH = np.meshgrid(ps, th, indexing="ij")
    score = np.zeros_like(P)
    half = np.zeros_like(P)
    for i, j in [(1, 0), (0, 1), (1, 1), (1, -1)]:
        for s, acc in ((1.0, score), (0.5, half)):
            dx = s * P * (i * np.cos(TH) - j * np.sin(TH))
            dy = s * P * (i * np.sin(TH) + j * np.cos(TH))
            acc += ndimage.map_coordinates(a, [dy % fh, dx % fw], order=1, mode="grid-wrap")
    sc = score - np.maximum(half, 0)
    out = []
    sc2 = sc.copy()
    for _ in range(n_out):
        k = np.unravel_index(np.argmax(sc2), sc2.shape)
        out.append((float(P[k]), float(TH[k]), float(sc2[k])))
        near = (np.abs(np.log(P / P[k])) < 0.04) & (np.abs(TH - TH[k]) < np.deg2rad(1.5))
        sc2[near] = -np.inf
    return out, sc


def fold(w: np.ndarray, period: float, theta: float):
    h, wd = w.shape
    c = period / T
    ys, xs = np.mgrid[0:h, 0:wd].astype(np.float32) + 0.5
    ct, st = np.cos(theta), np.sin(theta)
    u = (ct * xs + st * ys) / c * B
    v = (-st * xs + ct * ys) / c * B
    n = T * B
    iu = np.floor(u).astype(np.int64) % n
    iv = np.floor(v).astype(np.int64) % n
    idx = (iv * n + iu).ravel()
    s = np.bincount(idx, weights=w.ravel(), minlength=n * n)
    cnt = np.bincount(idx, minlength=n * n)
    f = s / np.maximum(cnt, 1)
    return f.reshape(n, n)


def bin_template(tile):
    """Tile values at bin centres (bilinear, same shape as the embedder)."""
    n = T * B
    m = interp_matrix(n, float(B))
    return m @ tile @ m.T


def sync_corr(F, S):
    Ff = np.fft.fft2(F)
    out = []
    for flip in (False, True):
        Sx = S[:, ::-1] if flip else S
        c = np.real(np.fft.ifft2(Ff * np.conj(np.fft.fft2(Sx))))
        z = (c - c.mean()) / c.std()
        k = np.unravel_index(np.argmax(z), z.shape)
        out.append((float(z[k]), k, flip))
    return max(out, key=lambda t: t[0])


def raw_soft(F, tab):
    n = T * B
    m = interp_matrix(n, float(B))
    chips = (m.T @ F @ m).ravel()
    pay_idx, _sync_idx, _sync_sign, carrier = tab
    return (chips[pay_idx] * carrier).sum(axis=0)


def read_soft(F, tab, shift, flip):
    n = T * B
    F = np.roll(F, (-shift[0], -shift[1]), axis=(0, 1))
    if flip:
        F = np.roll(F[:, ::-1], 1, axis=1)
        # after mirroring, template S[:, ::-1] at shift s means F(v, u+s) = S(v, n-1-u)
    m = interp_matrix(n, float(B))  # [n, T]
    chips = (m.T @ F @ m).ravel()
    pay_idx, _sync_idx, _sync_sign, carrier = tab
    soft = (chips[pay_idx] * carrier).sum(axis=0)
    return soft / (np.std(soft) + 1e-12)


def detect(img, seed, use_prior=True, n_cand=8, refine=True, timings=None):
    t0 = time.perf_counter()
    tab = tables(seed)
    S = bin_template(sync_tile(tab))
    y, f = work_luma(img)
    c0 = min(y.shape) / K_TILES / T
    cache = {}

    def wh(c):
        k = round(np.log2(c) * 6)
        if k not in cache:
            cache[k] = whiten(y, 2.0 ** (k / 6))
        return cache[k]

    w = wh(c0)
    t1 = time.perf_counter()
    hyps = []
    if use_prior:
        hyps.append((min(y.shape) / K_TILES, 0.0, np.inf))
    cands, _ = lattice_candidates(w, n_out=n_cand, f=f)
    hyps += cands
    t2 = time.perf_counter()
    best = None
    for p, th, _sc in hyps:
        F = fold(wh(p / T), p, th)
        z, k, flip = sync_corr(F, S)
        if best is None or z > best[0]:
            best = (z, k, flip, p, th, F)
    if refine:
        _z0, k, flip, p0, th0, F = best
        w2 = wh(p0 / T)
        for dp in (-0.004, -0.002, 0.0, 0.002, 0.004):
            for dth in np.deg2rad([-0.15, -0.075, 0.0, 0.075, 0.15]):
                if dp == 0 and dth == 0:
                    continue
                p, th = p0 * (1 + dp), th0 + dth
                F = fold(w2, p, th)
                z, k, flip = sync_corr(F, S)
                if z > best[0]:
                    best = (z, k, flip, p, th, F)
    t3 = time.perf_counter()
    z, k, flip, p, th, F = best
    soft = read_soft(F, tab, k, flip)
    if timings is not None:
        timings.update(prep=t1 - t0, lattice=t2 - t1, fold=t3 - t2)
    return dict(z=z, shift=k, flip=flip, period=p * f, theta=np.rad2deg(th), soft=soft, hyps=hyps)


# -------------------------------------------------------------------------------------------------- harness
def photos():
    import skimage.data as d

    out = {n: getattr(d, n)() for n in ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera"]}
    try:
        import matplotlib.cbook as cb
        from PIL import Image

        with cb.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = np.asarray(Image.open(fh).convert("RGB"))
    except Exception:
        pass
    return out


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import provmark as pm
    from image_attacks import ATTACKS

    rng = np.random.default_rng(1)
    names = sys.argv[1:] or list(ATTACKS)
    ok = {n: 0 for n in names}
    for pname, img in photos().items():
        pl = pm.Payload(rng.bytes(8))
        bits = pl.encode().astype(np.float64)
        m = embed(img, bits, seed=7)
        print(f"{pname} {img.shape} psnr={psnr(img, m):.2f}")
        for an in names:
            a = ATTACKS[an](m, np.random.default_rng(3))
            tm = {}
            r = detect(a, seed=7, timings=tm)
            ber = np.mean((r["soft"] > 0) != (bits > 0.5))
            dec = pm.Payload.decode(r["soft"].astype(np.float32))
            exact = dec == pl
            ok[an] += exact
            r0 = detect(ATTACKS[an](img, np.random.default_rng(3)), seed=7)
            print(
                f"   {an:14s} z={r['z']:6.2f} ber={ber:.3f} exact={int(exact)} p={r['period']:.1f} "
                f"th={r['theta']:+.2f} flip={r['flip']} | unmarked z={r0['z']:.2f}  "
                f"t={sum(tm.values()) * 1000:.0f}ms"
            )
    print(ok)
