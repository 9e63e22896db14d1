"""Robustness and quality metrics for the benchmark (numpy + scipy only).

Robustness
    :func:`bit_accuracy`, :func:`exact_match`, and detection at a fixed false-positive rate: a method's
    threshold is calibrated on the scores of *unmarked* items (:func:`calibrate_threshold`), then the
    detection rate of marked items is the fraction above it (:func:`tpr_at_fpr`). Every method is thus
    compared at the same empirical FPR. With ``n`` negatives the smallest FPR that can be resolved is
    ``1/n``; :func:`calibrate_threshold` says so in its result rather than pretending.
Quality
    :func:`psnr`, :func:`ssim` (Wang et al. 2004, Gaussian window sigma 1.5) and :func:`snr` for audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


def _bits(a, name: str) -> np.ndarray:
    x = np.asarray(a)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of bits, got shape {x.shape}")
    if x.dtype == bool:
        return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 1)):
        raise ValueError(f"{name} must hold only 0/1 values")
    return x.astype(np.uint8)


def bit_accuracy(expected, decoded) -> float:
    """Fraction of ``decoded`` bits equal to ``expected``; ``decoded=None`` (nothing read) scores 0.5,
    the accuracy of a coin flip, so a method cannot gain by declining to answer."""
    e = _bits(expected, "expected")
    if e.size == 0:
        raise ValueError("expected must hold at least one bit")
    if decoded is None:
        return 0.5
    d = _bits(decoded, "decoded")
    if d.shape != e.shape:
        raise ValueError(f"decoded has {d.size} bits, expected {e.size}")
    return float(np.mean(d == e))


def exact_match(expected, decoded) -> bool:
    """True when every bit was recovered."""
    if decoded is None:
        return False
    return bit_accuracy(expected, decoded) == 1.0


@dataclass(frozen=True)
class Threshold:
    """A calibrated detection threshold: detect when ``score > value``."""

    value: float
    target_fpr: float
    empirical_fpr: float  # fraction of the calibration negatives above ``value``
    n_negatives: int
    resolvable: bool  # False when target_fpr < 1/n_negatives: the threshold is the largest negative score


def _scores(a, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64).ravel()
    if x.size and not np.all(np.isfinite(x) | np.isposinf(x) | np.isneginf(x)):
        raise ValueError(f"{name} contains NaN")
    return x


def calibrate_threshold(negative_scores, fpr: float) -> Threshold:
    """Smallest threshold ``t`` with at most ``floor(fpr * n)`` of the ``n`` negative scores strictly above
    it.

    Higher scores mean "more likely marked". Ties at the threshold count as negatives (``score > t`` detects).
    """
    if not (isinstance(fpr, (int, float)) and 0 < fpr < 1):
        raise ValueError(f"fpr must be in (0, 1), got {fpr!r}")
    neg = _scores(negative_scores, "negative_scores")
    if neg.size == 0:
        raise ValueError("calibrate_threshold needs at least one negative score")
    n = neg.size
    k = math.floor(fpr * n + 1e-9)  # negatives allowed above the threshold
    desc = np.sort(neg)[::-1]
    t = float(desc[min(k, n - 1)]) if k < n else float(desc[-1])
    above = int(np.sum(neg > t))
    return Threshold(value=t, target_fpr=float(fpr), empirical_fpr=above / n, n_negatives=n, resolvable=k >= 1)


def detection_rate(scores, threshold: float) -> float:
    """Fraction of ``scores`` strictly above ``threshold`` (0 for an empty list)."""
    s = _scores(scores, "scores")
    return float(np.mean(s > threshold)) if s.size else float("nan")


def tpr_at_fpr(positive_scores, negative_scores, fpr: float) -> float:
    """True-positive rate of ``positive_scores`` at the threshold calibrated on ``negative_scores``."""
    th = calibrate_threshold(negative_scores, fpr)
    return detection_rate(positive_scores, th.value)


def roc_auc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve (probability a positive outscores a negative; ties count half)."""
    p = _scores(positive_scores, "positive_scores")
    n = _scores(negative_scores, "negative_scores")
    if p.size == 0 or n.size == 0:
        raise ValueError("roc_auc needs positive and negative scores")
    allv = np.concatenate([p, n])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty_like(order, dtype=np.float64)
    sv = allv[order]
    i = 0
    while i < sv.size:  # average ranks over ties
        j = i
        while j + 1 < sv.size and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rp = ranks[: p.size].sum()
    return float((rp - p.size * (p.size + 1) / 2.0) / (p.size * n.size))


def binomial_p_value(matches: int, n_bits: int) -> float:
    """P(at least ``matches`` of ``n_bits`` fair coin flips agree): the p-value of a bit-match score."""
    if not 0 <= matches <= n_bits:
        raise ValueError(f"matches must be in 0..{n_bits}, got {matches}")
    total = 0.0
    for k in range(matches, n_bits + 1):
        total += math.comb(n_bits, k)
    return float(total / 2.0**n_bits)


# ------------------------------------------------------------------------------------------ quality


def _pair(a, b, name: str):
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"{name}: shapes differ: {x.shape} vs {y.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: empty input")
    return x.astype(np.float64), y.astype(np.float64)


def _default_range(a) -> float:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 65535.0
    if np.issubdtype(a.dtype, np.floating):
        return 1.0
    raise TypeError(f"give data_range explicitly for dtype {a.dtype}")


def psnr(reference, test, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)``; ``inf`` for identical inputs."""
    r = _default_range(reference) if data_range is None else float(data_range)
    x, y = _pair(reference, test, "psnr")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(r * r / mse)


def ssim(reference, test, data_range: float | None = None, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004): Gaussian window ``sigma``, K1 = 0.01, K2 = 0.03.

    Colour images ([H, W, C]) are scored per channel and averaged. As in Wang et al.'s reference code the
    local (co)variances are Gaussian-weighted without an N/(N-1) correction, and the mean is taken over
    the region where the 11x11 window fits entirely (scikit-image's ``structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` computes the same number).
    """
    from scipy.ndimage import gaussian_filter

    r = _default_range(reference) if data_range is None else float(data_range)
    x, y = _pair(reference, test, "ssim")
    if x.ndim == 3:
        return float(np.mean([ssim(x[:, :, c], y[:, :, c], r, sigma) for c in range(x.shape[2])]))
    if x.ndim != 2:
        raise ValueError(f"ssim takes [H, W] or [H, W, C] images, got shape {x.shape}")
    truncate = 3.5
    rad = int(truncate * sigma + 0.5)
    if min(x.shape) < 2 * rad + 1:
        raise ValueError(f"ssim: image {x.shape} smaller than the {2 * rad + 1}-pixel window")
    cov_norm = 1.0

    def filt(v):
        return gaussian_filter(v, sigma, truncate=truncate, mode="reflect")

    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s[rad:-rad, rad:-rad].mean())


def snr(reference, test) -> float:
    """Signal-to-noise ratio in dB of ``test`` against ``reference``: ``10 log10(sum ref^2 / sum
    (ref-test)^2)``.

    The arrays must have equal shapes (trim first if an attack changed the length).
    """
    x, y = _pair(reference, test, "snr")
    noise = float(np.sum((x - y) ** 2))
    sig = float(np.sum(x * x))
    if noise == 0.0:
        return float("inf")
    if sig == 0.0:
        return float("-inf")
    return 10.0 * math.log10(sig / noise)


def summarize(values: Iterable[float]) -> dict:
    """Mean, median, min and count of the finite values (inf counted separately)."""
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    fin = v[np.isfinite(v)]
    return {
        "n": int(v.size),
        "n_inf": int(np.sum(np.isinf(v))),
        "mean": float(fin.mean()) if fin.size else float("nan"),
        "median": float(np.median(fin)) if fin.size else float("nan"),
        "min": float(fin.min()) if fin.size else float("nan"),
    }


def mean_or_nan(values: Sequence[float]) -> float:
    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")
