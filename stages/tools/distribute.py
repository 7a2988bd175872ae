"""Run the pipeline's cells across GPUs and machines on Ray; DVC stays the source of truth.

    python -m stages.tools.distribute --gpus 4                      # one box with 4 GPUs
    python -m stages.tools.distribute --address HEAD_IP:6379        # a running Ray cluster (SLURM:
                                                              #   .ci/slurm/distribute.sbatch)
    python -m stages.tools.distribute --cpus 2                      # CPUs only (GPU cells on CPUs)

Each DVC stage runs as a Ray task, once its parents are done, in its own clone of HEAD on the
shared DVC cache (GPU stages ask for a GPU); a failed cell is retried once and resumes from its
checkpoints. Then a plain ``dvc repro`` here restores every cell from the run-cache and stops with
an error if a training stage would run again. The tree must be committed. See docs/distributed.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..lib.cli import exit_on_user_error, setup_logging
from ..lib.distribute import Options, campaign


def run(argv: list[str] | None = None) -> None:
    """Parse the flags, run the campaign, gather."""
    parser = argparse.ArgumentParser(prog="python -m stages.tools.distribute", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--address", help="HOST:PORT of a running Ray cluster (ray start --head)")
    where.add_argument("--gpus", type=int, help="local cluster: GPUs to use (default: detected)")
    parser.add_argument("--cpus", type=int, help="local cluster: CPUs to use (default: detected)")
    parser.add_argument("--cache", type=Path, help="shared DVC cache (default: the workspace's; "
                        "must be the workspace's)")
    parser.add_argument("--work", type=Path, default=Path(".dvc/tmp/distribute"),
                        help="scratch for clones and logs, on storage every node sees")
    parser.add_argument("--cpus-per-cell", type=int, default=1,
                        help="CPUs each cell holds (its runtime.workers)")
    parser.add_argument("--cells-per-gpu", type=int, default=1,
                        help="model cells sharing one GPU (3 default trainings on one H200 gave "
                        "1.8x the throughput of one: docs/gpu.md)")
    parser.add_argument("--hardlink-lock", action="store_true",
                        help="core.hardlink_lock in every clone (shared cache on NFS)")
    parser.add_argument("--keep-clones", action="store_true", help="keep successful clones")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    campaign(Path.cwd(), Options(args.address, args.gpus, args.cpus, args.cache, args.work,
                                 args.cpus_per_cell, args.hardlink_lock, args.keep_clones,
                                 args.cells_per_gpu))


def main(argv: list[str] | None = None) -> None:
    """Entry point: a dirty tree, a failed cell or a re-run in the gather end with one error line."""
    exit_on_user_error("distribute", run, argv)


if __name__ == "__main__":
    main()
