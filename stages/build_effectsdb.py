"""Stage ``build_effectsdb``: clean songs + songs with distortion / reverb / low-pass (pedalboard).

    python -m stages.build_effectsdb --pool data/rendered/train --out data/effectsdb \
        --truth data/effectsdb_truth.json --exclude data/rendered/reference
"""

from __future__ import annotations

from .lib.cli import exit_on_user_error
from .lib.datasets import EffectsDBParams, build_stage, effectsdb_jobs


def main(argv: list[str] | None = None) -> None:
    """Build EffectsDB from the rendered pool (simulated) or real folders (``mode: real``)."""
    exit_on_user_error("build_effectsdb", build_stage, argv, "effectsdb", "build_effectsdb",
                       EffectsDBParams, effectsdb_jobs, lambda pool: pool.n_clean + pool.n_effects)


if __name__ == "__main__":
    main()
