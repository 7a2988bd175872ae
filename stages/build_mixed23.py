"""Stage ``build_mixed23``: clean songs + label noise + bleeding, with a ground-truth manifest.

    python -m stages.build_mixed23 --pool data/rendered/train --out data/mixed23 \
        --truth data/mixed23_truth.json --exclude data/rendered/reference
"""

from __future__ import annotations

from .lib.cli import exit_on_user_error
from .lib.datasets import Mixed23Params, build_stage, mixed23_jobs


def main(argv: list[str] | None = None) -> None:
    """Build Mixed23 from the rendered pool (simulated) or from real folders (``mode: real``)."""
    exit_on_user_error("build_mixed23", build_stage, argv, "mixed23", "build_mixed23",
                       Mixed23Params, mixed23_jobs,
                       lambda pool: pool.n_clean + pool.n_label_noise + pool.n_bleeding)


if __name__ == "__main__":
    main()
