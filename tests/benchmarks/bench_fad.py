"""Benchmark: per-song FAD via a precomputed Σ_r^{1/2} + eigvalsh vs scipy.linalg.sqrtm(Σ_s Σ_r).

    python tests/benchmarks/bench_fad.py --dim 768 --songs 50

Synthetic frames with MERT's width (768) by default: N songs of T frames against a reference of
R frames. Prints both wall times, the speed-up and the largest relative difference. Nothing is
asserted (equality is a test: tests/test_fad.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stages.lib.fad import Gaussian, ReferenceFAD, fad_sqrtm_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--songs", type=int, default=50)
    parser.add_argument("--frames", type=int, default=900, help="frames per song (12 s of MERT)")
    parser.add_argument("--ref-frames", type=int, default=7200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((args.dim, args.dim)) / np.sqrt(args.dim)
    ref = Gaussian.fit(rng.standard_normal((args.ref_frames, args.dim)) @ mix)
    songs = [Gaussian.fit(rng.standard_normal((args.frames, args.dim)) @ mix * (1 + 0.1 * i))
             for i in range(args.songs)]

    start = time.perf_counter()
    fad = ReferenceFAD(ref)
    fast = np.array([fad(s) for s in songs])
    fast_s = time.perf_counter() - start

    start = time.perf_counter()
    slow = np.array([fad_sqrtm_reference(s, ref) for s in songs])
    slow_s = time.perf_counter() - start

    rel = np.max(np.abs(fast - slow) / np.abs(slow))
    print(f"D={args.dim}, {args.songs} songs: eigvalsh {fast_s:.2f} s, sqrtm {slow_s:.2f} s, "
          f"speed-up {slow_s / fast_s:.1f}x, max relative difference {rel:.2e}")


if __name__ == "__main__":
    main()
