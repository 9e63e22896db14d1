"""Payload ECC figures: decode success vs channel damage, false-CRC rate, decode time.

Prints Markdown tables (pasted into docs/ecc.md). Reproduce with:

    python benchmarks/ecc_figures.py            # full run, ~1-2 minutes on 2 cores
    python benchmarks/ecc_figures.py --trials 2000 --false-trials 10000   # quick look

Channels (payload of 64 bits unless stated; soft > 0 favours coded bit 1):
  * sign flips: hard +-1 soft values, a fraction flipped (flipped bits keep full confidence: worst case);
  * erasures: a fraction of soft values set to 0;
  * AWGN: soft = (2c - 1) + N(0, sigma^2), Es/N0 = 1 / (2 sigma^2) per coded bit.
"False CRC" counts decodes that return a payload other than the embedded one (for pure noise, any payload).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from provmark import _core

POLYS = (0o133, 0o171, 0o165)


def random_codewords(rng: np.random.Generator, count: int, bits: int) -> tuple[list[bytes], np.ndarray]:
    payloads = [rng.integers(0, 256, bits // 8, dtype=np.uint8).tobytes() for _ in range(count)]
    coded = np.stack([_core.ecc_encode(p) for p in payloads])
    return payloads, coded


def channel(rng, coded: np.ndarray, flip=0.0, erase=0.0, sigma=0.0) -> np.ndarray:
    soft = coded.astype(np.float32) * 2.0 - 1.0
    if flip:
        soft[rng.random(soft.shape) < flip] *= -1.0
    if sigma:
        soft += rng.normal(0.0, sigma, soft.shape).astype(np.float32)
    if erase:
        soft[rng.random(soft.shape) < erase] = 0.0
    return soft


def run_trials(rng, trials: int, bits: int, batch: int = 5000, **chan) -> tuple[int, int, int, list[float]]:
    """Returns (right, none, wrong, confidences) over trials random payloads."""
    right = none = wrong = 0
    confs: list[float] = []
    done = 0
    while done < trials:
        count = min(batch, trials - done)
        payloads, coded = random_codewords(rng, count, bits)
        soft = channel(rng, coded, **chan)
        for payload, row in zip(payloads, soft, strict=True):
            decoded, confidence = _core.ecc_decode(row, bits)
            confs.append(confidence)
            if decoded is None:
                none += 1
            elif decoded == payload:
                right += 1
            else:
                wrong += 1
        done += count
    return right, none, wrong, confs


def pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:.2f}%"


def pct_count(k: int, n: int) -> str:
    return f"{100.0 * k / n:.3f}% ({k})"


def upper95(k: int, n: int) -> str:
    """One-sided 95% upper bound on a rate from k events in n trials (exact for k = 0: 1 - 0.05^(1/n))."""
    if k == 0:
        return f"{1.0 - 0.05 ** (1.0 / n):.1e}"
    p = k / n
    return f"{p + 1.645 * math.sqrt(p * (1 - p) / n):.1e}"


def numpy_viterbi(soft: np.ndarray, bits: int) -> tuple[bytes | None, float]:
    """NumPy reference of provmark::ecc::decode (vectorised over the 64 states), for timing and parity."""
    steps = soft.size // 3
    reg = np.arange(128)
    out = np.stack([np.array([bin(r & p).count("1") & 1 for r in reg]) for p in POLYS], axis=1) * 2 - 1
    # Register value r = (predecessor << 1) | u: predecessor r >> 1, next state r & 63, and r = 64 m + next
    # with m the predecessor's oldest bit, so reshape(2, 64) pairs the two predecessors of each next state.
    pred = reg >> 1
    pm = np.full(64, -1e30)
    pm[0] = 0.0
    dec = np.empty((steps, 64), dtype=np.int64)
    s = soft.astype(np.float64).reshape(steps, 3)
    for t in range(steps):
        both = (pm[pred] + out @ s[t]).reshape(2, 64)  # both[m, next state]
        choose = both[1] > both[0]
        dec[t] = choose
        pm = np.where(choose, both[1], both[0])
    info = np.empty(steps, dtype=np.uint8)
    state = 0
    for t in range(steps - 1, -1, -1):
        info[t] = state & 1
        state = (state >> 1) | (int(dec[t, state]) << 5)
    payload = np.packbits(info[:bits]).tobytes()
    crc_rx = int("".join(map(str, info[bits : bits + 32])), 2)
    crc = _crc32c(payload)
    coded = _reencode(info)
    conf = float((np.where(coded == 1, 1.0, -1.0) * soft).sum() / max(np.abs(soft).sum(), 1e-300))
    return (payload if crc == crc_rx else None), conf


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _reencode(info: np.ndarray) -> np.ndarray:
    out = []
    reg = 0
    for u in info:
        reg = ((reg << 1) | int(u)) & 0x7F
        out += [bin(reg & p).count("1") & 1 for p in POLYS]
    return np.array(out)


def time_per_call(fn, arg, bits: int, calls: int, repeats: int = 5) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(arg, bits)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def list_figures(rng: np.random.Generator, trials: int, false_trials: int) -> None:
    """CRC-aided list decoding (Payload.decode_list): success vs Es/N0 for list sizes 1 (plain Viterbi) to
    256 on the same noisy codewords, CRC checks and false payloads on pure noise, and time per call."""
    sizes = (1, 4, 16, 64, 256)
    print(f"\n## CRC-aided list decoding (64-bit payload, AWGN soft values, {trials} trials per row)\n")
    print("| Es/N0 per coded bit | " + " | ".join(f"list {k}" for k in sizes) + " | wrong payload |")
    print("|---|" + "---|" * (len(sizes) + 1))
    n = _core.ecc_coded_length(64)
    for esn0_db in (-7.0, -6.0, -5.0, -4.0):
        sigma = math.sqrt(1.0 / (2.0 * 10 ** (esn0_db / 10.0)))
        ok = dict.fromkeys(sizes, 0)
        wrong = 0
        for _ in range(trials):
            payload = rng.bytes(8)
            soft = ((_core.ecc_encode(payload).astype(np.float32) * 2 - 1) + rng.normal(0, sigma, n)).astype(np.float32)
            for k in sizes:
                got = _core.ecc_decode_list(soft, 64, k)[0]
                ok[k] += got == payload
                wrong += got is not None and got != payload
        print(f"| {esn0_db:+.0f} dB | " + " | ".join(pct(ok[k], trials) for k in sizes) + f" | {wrong} |")
    checks = fails = 0
    for _ in range(false_trials):
        got, _c, checked, _r = _core.ecc_decode_list(rng.normal(size=n).astype(np.float32), 64, 256)
        checks += checked
        fails += got is not None
    print(
        f"\nPure noise, list 256: {false_trials} inputs, {checks} CRC checks ({checks / false_trials:.0f} each), "
        f"{fails} payloads returned (expected {checks * 2.0**-32:.1e})."
    )
    soft = rng.normal(size=n).astype(np.float32)  # worst case: no path passes, the whole list is checked
    print("\n| list size | time per call (pure noise, best of 5) |\n|---|---|")
    for k in sizes:
        dt = time_per_call(lambda x, b, k=k: _core.ecc_decode_list(x, b, k), soft, 64, 200 if k < 64 else 40)
        print(f"| {k} | {dt * 1e6:.0f} µs |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10_000, help="trials per table cell (default 10000)")
    ap.add_argument(
        "--headline-trials",
        type=int,
        default=100_000,
        help="trials for the 5%% flip / 20%% erasure figures (default 100000)",
    )
    ap.add_argument(
        "--false-trials",
        type=int,
        default=100_000,
        help="random / corrupted codewords for the false-CRC rate (default 100000)",
    )
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--list-only", action="store_true", help="only the list decoding figures")
    ap.add_argument("--list-trials", type=int, default=2000, help="trials per list decoding row (default 2000)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.list_only:
        list_figures(rng, args.list_trials, args.list_trials)
        return
    t_start = time.perf_counter()
    print(f"# provmark payload ECC figures (seed {args.seed}, {args.trials} trials per cell)\n")

    print("## Decode success vs sign-flip rate (64-bit payload, hard +-1 soft values)\n")
    print("| flip rate | exact payload | no payload | wrong payload | mean confidence |")
    print("|---|---|---|---|---|")
    for flip in (0.0, 0.02, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20):
        r, nn, w, confs = run_trials(rng, args.trials, 64, flip=flip)
        print(f"| {flip:.0%} | {pct(r, args.trials)} | {pct(nn, args.trials)} | {w} | {np.mean(confs):.3f} |")

    print("\n## Decode success vs erasure rate (64-bit payload, the rest hard +-1)\n")
    print("| erasure rate | exact payload | no payload | wrong payload | mean confidence |")
    print("|---|---|---|---|---|")
    for erase in (0.0, 0.10, 0.20, 0.30, 0.40, 0.50, 0.55, 0.60, 0.65):
        r, nn, w, confs = run_trials(rng, args.trials, 64, erase=erase)
        print(f"| {erase:.0%} | {pct(r, args.trials)} | {pct(nn, args.trials)} | {w} | {np.mean(confs):.3f} |")

    print("\n## Decode success vs Es/N0 (64-bit payload, AWGN soft values)\n")
    print("| Es/N0 per coded bit | sigma | exact payload | no payload | wrong payload | mean confidence |")
    print("|---|---|---|---|---|---|")
    for esn0_db in (-6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0):
        sigma = math.sqrt(1.0 / (2.0 * 10 ** (esn0_db / 10.0)))
        r, nn, w, confs = run_trials(rng, args.trials, 64, sigma=sigma)
        print(
            f"| {esn0_db:+.0f} dB | {sigma:.2f} | {pct(r, args.trials)} | {pct(nn, args.trials)} | {w} "
            f"| {np.mean(confs):.3f} |"
        )

    n_h = args.headline_trials
    print(f"\n## Headline cases (64 bits: {n_h} trials per row; other sizes: {args.trials})\n")
    print("| payload bits | channel | exact payload | no payload | wrong payload |")
    print("|---|---|---|---|---|")
    for bits in (16, 64, 128, 256):
        trials = n_h if bits == 64 else args.trials
        for label, chan in (
            ("5% flips", {"flip": 0.05}),
            ("20% erasures", {"erase": 0.20}),
            ("5% flips + 20% erasures", {"flip": 0.05, "erase": 0.20}),
        ):
            r, nn, w, _ = run_trials(rng, trials, bits, **chan)
            cells = f"{pct_count(r, trials)} | {pct_count(nn, trials)} | {w}"
            print(f"| {bits} | {label} ({trials} trials) | {cells} |")

    n_f = args.false_trials
    print(f"\n## False CRC: {n_f} codewords that must not yield a wrong payload (64 bits)\n")
    print("| input | exact payload | no payload | wrong payload (false CRC) | 95% upper bound on the rate |")
    print("|---|---|---|---|---|")
    n_dim = _core.ecc_coded_length(64)
    false_noise = 0
    noise_confs = []
    done = 0
    while done < n_f:
        count = min(10_000, n_f - done)
        for row in rng.normal(0.0, 1.0, (count, n_dim)).astype(np.float32):
            decoded, confidence = _core.ecc_decode(row, 64)
            false_noise += decoded is not None
            noise_confs.append(confidence)
        done += count
    print(
        f"| pure Gaussian noise (nothing embedded) | - | {pct_count(n_f - false_noise, n_f)} | {false_noise} "
        f"| {upper95(false_noise, n_f)} |"
    )
    # Corrupted codewords: 10..50% sign flips drawn per codeword, from barely decodable to hopeless.
    right = none = wrong = 0
    done = 0
    while done < n_f:
        count = min(5000, n_f - done)
        payloads, coded = random_codewords(rng, count, 64)
        soft = coded.astype(np.float32) * 2.0 - 1.0
        rates = rng.uniform(0.10, 0.50, (count, 1))
        soft[rng.random(soft.shape) < rates] *= -1.0
        for payload, row in zip(payloads, soft, strict=True):
            decoded, _ = _core.ecc_decode(row, 64)
            if decoded is None:
                none += 1
            elif decoded == payload:
                right += 1
            else:
                wrong += 1
        done += count
    print(
        f"| codewords with 10-50% sign flips (uniform) | {pct_count(right, n_f)} | {pct_count(none, n_f)} "
        f"| {wrong} | {upper95(wrong, n_f)} |"
    )

    nc = np.asarray(noise_confs)
    print(f"\n## Confidence of the decoded path on pure noise ({n_f} vectors, 64 bits)\n")
    print("| mean | std | 99th percentile | 99.99th percentile | max |")
    print("|---|---|---|---|---|")
    print(
        f"| {nc.mean():.4f} | {nc.std():.4f} | {np.quantile(nc, 0.99):.4f} | {np.quantile(nc, 0.9999):.4f} "
        f"| {nc.max():.4f} |"
    )

    print("\n## Decode time per call (Python call included; best of 5)\n")
    print("| payload bits | provmark _core.ecc_decode | NumPy reference Viterbi | ratio | outputs equal |")
    print("|---|---|---|---|---|")
    for bits in (16, 64, 128, 256):
        payloads, coded = random_codewords(rng, 20, bits)
        soft = channel(rng, coded, flip=0.05, erase=0.1)
        equal = all(_core.ecc_decode(s, bits)[0] == numpy_viterbi(s, bits)[0] for s in soft)
        equal = equal and all(abs(_core.ecc_decode(s, bits)[1] - numpy_viterbi(s, bits)[1]) < 1e-5 for s in soft[:5])
        t_core = time_per_call(_core.ecc_decode, soft[0], bits, 20_000)
        t_ref = time_per_call(numpy_viterbi, soft[0], bits, 20, repeats=3)
        print(f"| {bits} | {t_core * 1e6:.2f} us | {t_ref * 1e6:.0f} us | {t_ref / t_core:.0f}x | {equal} |")
    list_figures(rng, min(args.trials, 2000), min(args.false_trials, 2000))
    print(f"\n(total run time {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
