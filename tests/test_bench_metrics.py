"""provmark.bench.metrics against hand-computed values and synthetic score distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from provmark.bench import metrics as M


def test_bit_accuracy_and_exact_by_hand():
    e = np.array([1, 0, 1, 1, 0, 0, 1, 0], np.uint8)
    d = np.array([1, 0, 0, 1, 0, 1, 1, 0], np.uint8)  # two errors
    assert M.bit_accuracy(e, d) == 6 / 8
    assert M.bit_accuracy(e, e) == 1.0
    assert M.bit_accuracy(e, 1 - e) == 0.0
    assert M.bit_accuracy(e, None) == 0.5
    assert M.bit_accuracy(e.astype(bool), d.astype(bool)) == 0.75
    assert M.exact_match(e, e.copy()) and not M.exact_match(e, d) and not M.exact_match(e, None)
    with pytest.raises(ValueError):
        M.bit_accuracy(e, d[:7])
    with pytest.raises(ValueError):
        M.bit_accuracy(e, np.array([0, 1, 2, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError):
        M.bit_accuracy(np.array([], np.uint8), None)


def test_psnr_by_hand():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 16  # MSE = 256 / 16 = 16 -> PSNR = 10 log10(255^2 / 16)
    assert math.isclose(M.psnr(a, b), 10 * math.log10(255**2 / 16))
    assert M.psnr(a, a) == float("inf")
    f = np.zeros(100, np.float32)
    g = f + 0.1  # MSE 0.01 with range 1 -> 20 dB
    assert math.isclose(M.psnr(f, g), 20.0, rel_tol=1e-6)
    assert math.isclose(M.psnr(f, g, data_range=2.0), 20.0 + 20 * math.log10(2), rel_tol=1e-6)
    with pytest.raises(ValueError):
        M.psnr(a, np.zeros((4, 5), np.uint8))


def test_snr_by_hand():
    x = np.array([1.0, -1.0, 1.0, -1.0])
    y = x + np.array([0.1, -0.1, 0.1, -0.1])  # noise power 0.01 vs signal 1 -> 20 dB
    assert math.isclose(M.snr(x, y), 20.0)
    assert M.snr(x, x) == float("inf")


def test_ssim_by_hand_and_against_reference():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (40, 40))
    assert math.isclose(M.ssim(a, a, data_range=1.0), 1.0)
    # two constant images: variances 0, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) everywhere
    x = np.full((32, 32), 0.5)
    y = np.full((32, 32), 0.25)
    c1 = 0.01**2
    assert math.isclose(M.ssim(x, y, data_range=1.0), (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1), rel_tol=1e-9)
    skm = pytest.importorskip("skimage.metrics")
    from skimage import data

    img = data.camera()[::4, ::4]
    noisy = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(
        img, noisy, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert math.isclose(M.ssim(img, noisy), ref, rel_tol=1e-6)
    col = data.astronaut()[::8, ::8]
    col2 = np.clip(col.astype(int) + 20, 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(
        col,
        col2,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=2,
    )
    assert math.isclose(M.ssim(col, col2), ref, rel_tol=1e-6)


def test_calibrate_threshold_by_hand():
    neg = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    th = M.calibrate_threshold(neg, 0.1)  # one negative may exceed: threshold at the 2nd largest
    assert th.value == 0.9 and th.empirical_fpr == 0.1 and th.resolvable and th.n_negatives == 10
    th = M.calibrate_threshold(neg, 0.25)  # two may exceed
    assert th.value == 0.8 and th.empirical_fpr == 0.2
    th = M.calibrate_threshold(neg, 0.01)  # below 1/n: cannot resolve; threshold = max negative
    assert th.value == 1.0 and th.empirical_fpr == 0.0 and not th.resolvable
    # ties: detection is strictly above, so tied negatives never count as false positives
    th = M.calibrate_threshold([0.5] * 10, 0.3)
    assert th.value == 0.5 and th.empirical_fpr == 0.0
    assert M.detection_rate([0.5, 0.6, 0.4, 0.95], 0.5) == 0.5
    with pytest.raises(ValueError):
        M.calibrate_threshold([], 0.1)
    with pytest.raises(ValueError):
        M.calibrate_threshold(neg, 0.0)
    with pytest.raises(ValueError):
        M.calibrate_threshold([0.1, float("nan")], 0.1)


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1])
def test_tpr_at_fpr_on_gaussian_scores(fpr):
    # negatives ~ N(0,1), positives ~ N(d,1): the true TPR at FPR f is 1 - Phi(z_{1-f} - d)
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    d = 2.0
    neg = rng.standard_normal(200_000)
    pos = rng.standard_normal(200_000) + d
    th = M.calibrate_threshold(neg, fpr)
    assert abs(th.empirical_fpr - fpr) < 1e-4
    assert abs(th.value - norm.ppf(1 - fpr)) < 0.02
    # fresh negatives from the same distribution: the calibrated FPR generalises
    assert abs(M.detection_rate(rng.standard_normal(200_000), th.value) - fpr) < 0.1 * fpr + 0.001
    expected = 1 - norm.cdf(norm.ppf(1 - fpr) - d)
    assert abs(M.tpr_at_fpr(pos, neg, fpr) - expected) < 0.01


def test_methods_compared_at_equal_fpr_despite_different_score_scales():
    # Two methods with the same separability but scores on different scales must get the same TPR.
    rng = np.random.default_rng(2)
    neg = rng.standard_normal(50_000)
    pos = rng.standard_normal(50_000) + 1.5
    a = M.tpr_at_fpr(pos, neg, 0.05)
    b = M.tpr_at_fpr(1000 * pos + 7, 1000 * neg + 7, 0.05)
    c = M.tpr_at_fpr(np.exp(pos), np.exp(neg), 0.05)  # any monotone transform
    assert a == b == c


def test_roc_auc_and_binomial_p():
    assert M.roc_auc([2, 3, 4], [0, 1]) == 1.0
    assert M.roc_auc([0, 1], [2, 3]) == 0.0
    assert M.roc_auc([1, 1], [1, 1]) == 0.5
    assert math.isclose(M.roc_auc([0.9, 0.4], [0.5, 0.1]), 0.75)
    assert math.isclose(M.binomial_p_value(64, 64), 2.0**-64)
    assert M.binomial_p_value(0, 8) == 1.0
    assert math.isclose(M.binomial_p_value(7, 8), 9 / 256)


def test_summarize():
    s = M.summarize([1.0, 3.0, float("inf"), 2.0])
    assert s == {"n": 4, "n_inf": 1, "mean": 2.0, "median": 2.0, "min": 1.0}
