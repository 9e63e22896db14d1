"""Keyed-stream throughput: SIMD levels and thread counts side by side, with OpenSSL's ChaCha20 as reference.

    python benchmarks/bench_rng.py

Prints Mwords/s per configuration and the ratio to OpenSSL (via the `cryptography` package) on the same
machine in the same run.
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from provmark import _core, get_num_threads, set_num_threads

N_WORDS = 1 << 24  # 64 MiB of keystream
KEY = bytes(range(32))


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    enc = Cipher(algorithms.ChaCha20(KEY, bytes(16)), mode=None).encryptor()
    zeros = bytes(4 * N_WORDS)
    ref = best_of(lambda: enc.update(zeros))
    print(f"{'configuration':<28} {'Mwords/s':>10} {'vs OpenSSL':>11}")
    print(f"{'OpenSSL ChaCha20 (1 thread)':<28} {N_WORDS / ref / 1e6:>10.1f} {1.0:>10.2f}x")
    level0, threads0 = _core.simd_level(), get_num_threads()
    levels = ["baseline"] + (["avx2"] if _core.simd_level_supported() == "avx2" else [])
    try:
        for level in levels:
            _core.set_simd_level(level)
            for threads in sorted({1, threads0}):
                set_num_threads(threads)
                t = best_of(lambda: _core.random_words(KEY, _core.Stream.TEST, N_WORDS))
                name = f"provmark {level}, {threads} thr"
                print(f"{name:<28} {N_WORDS / t / 1e6:>10.1f} {ref / t:>10.2f}x")
        t = best_of(lambda: _core.random_signs(KEY, _core.Stream.TEST, N_WORDS))
        print(f"{'random_signs (default)':<28} {N_WORDS / t / 1e6:>10.1f} {ref / t:>10.2f}x")
    finally:
        _core.set_simd_level(level0)
        set_num_threads(threads0)


if __name__ == "__main__":
    main()
