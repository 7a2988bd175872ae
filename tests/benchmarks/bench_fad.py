"""Benchmark: the project's per-song FAD vs fadtk's procedure, side by side in one run.

    python tests/benchmarks/bench_fad.py --dim 768 --songs 40

* project: ``ReferenceFAD`` — ``Σ_r^{1/2}`` once per reference, then one ``eigvalsh`` of
  ``Σ_r^{1/2} Σ_s Σ_r^{1/2}`` per song (stages/lib/fad.py);
* fadtk: ``fadtk.fad.calc_frechet_distance``'s procedure per song, written from its description:
  ``scipy.linalg.sqrtm(Σ_s Σ_r)`` (computed and compared by fadtk) *and* ``eig(Σ_s Σ_r)`` with
  ``V diag(sqrt λ) V^{-1}``, real part, on ``np.cov`` statistics without a regulariser.

Statistics (mean, covariance) are fitted once, outside the timings, for both. Times are CPU seconds
(``time.process_time``) per song with one BLAS/OpenMP thread (set below, before numpy loads).
Synthetic frames with a decaying spectrum; MERT's width (768) and frame count (899 per 12 s song,
8 reference songs) by default. ``--old-eps`` also reports how far the former convention (``eps · I``
added to both covariances always) moves the values and the ranks. Nothing is asserted (equality is
a test: tests/test_fad.py).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.scimath import sqrt as complex_sqrt  # noqa: E402
from scipy import linalg  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from stages.lib.fad import Gaussian, ReferenceFAD  # noqa: E402


def fadtk_procedure(song: Gaussian, ref: Gaussian) -> float:
    """One song as fadtk computes it (both square roots, eigenvalue route kept)."""
    product = song.cov @ ref.cov
    covmean_sqrtm = linalg.sqrtm(product)
    vals, vecs = linalg.eig(product)
    covmean = (vecs * complex_sqrt(vals)) @ linalg.inv(vecs)
    if not np.isfinite(covmean).all():
        raise RuntimeError("fadtk would add its 1e-6 regulariser here")
    del covmean_sqrtm  # fadtk only compares its trace with the eigenvalue route's
    diff = song.mean - ref.mean
    return float(diff @ diff + np.trace(song.cov) + np.trace(ref.cov)
                 - 2.0 * np.trace(covmean).real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--frames", type=int, default=899, help="frames per song (12 s of MERT)")
    parser.add_argument("--ref-frames", type=int, default=7192)
    parser.add_argument("--old-eps", type=float, default=1e-6)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mix = np.linalg.qr(rng.standard_normal((args.dim, args.dim)))[0]
    spectrum = np.geomspace(1.0, 1e-3, args.dim)

    def frames(n: int, scale: float, shift: float) -> np.ndarray:
        return (rng.standard_normal((n, args.dim)) * spectrum * scale) @ mix + shift

    ref = Gaussian.fit(frames(args.ref_frames, 1.0, 0.0))
    songs = [Gaussian.fit(frames(args.frames, 1 + 0.05 * rng.standard_normal(),
                                 0.02 * rng.standard_normal(args.dim)))
             for _ in range(args.songs)]

    start = time.process_time()
    fad = ReferenceFAD(ref)
    ours = np.array([fad(s) for s in songs])
    ours_s = time.process_time() - start

    start = time.process_time()
    theirs = np.array([fadtk_procedure(s, ref) for s in songs])
    theirs_s = time.process_time() - start

    rel = np.max(np.abs(ours - theirs) / np.abs(theirs))
    print(f"D={args.dim}, {args.songs} songs x {args.frames} frames, reference {args.ref_frames} "
          "frames, 1 BLAS thread, CPU time:")
    print(f"  project (eigvalsh, reference root once): {ours_s:.2f} s "
          f"({1000 * ours_s / args.songs:.1f} ms/song, reference setup included)")
    print(f"  fadtk procedure (sqrtm + eig + inv):     {theirs_s:.2f} s "
          f"({1000 * theirs_s / args.songs:.1f} ms/song)")
    print(f"  CPU-time ratio {theirs_s / ours_s:.1f}x; max relative difference {rel:.2e}")
    if args.old_eps > 0:
        eye = args.old_eps * np.eye(args.dim)
        old_fad = ReferenceFAD(Gaussian(ref.mean, ref.cov + eye))
        old = np.array([old_fad(Gaussian(s.mean, s.cov + eye)) for s in songs])
        moved = (old - theirs) / np.abs(theirs)
        changed = int(np.sum(rankdata(old) != rankdata(theirs)))
        print(f"  former convention (eps={args.old_eps:g} on both covariances): relative change "
              f"{moved.min():+.2e} .. {moved.max():+.2e}, {changed} of {args.songs} ranks change")


if __name__ == "__main__":
    main()
