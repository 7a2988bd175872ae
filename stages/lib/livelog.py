"""Training curves as DVCLive logs (``dvc plots``), written by the stage process once its
training workers are done.

Why not from the workers: dvclive (3.x) signals every finished step and run to the VS Code
extension through one file per repository (``.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED``) and
removes it at ``Live.end()`` with a check-then-delete, so two workers ending at once can fail
with ``FileNotFoundError`` (seen in CI). Written here, one target after another, nothing races;
the logs hold the same records (a resumed run's history is complete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

LOGGED = ("train_loss", "valid_loss", "lr")


def write_training_logs(folder: Path, histories: Mapping[str, Sequence[Mapping[str, float]]]) -> None:
    """One DVCLive log ``<folder>/<target>`` per target: each epoch's record is one step."""
    from dvclive import Live

    for target, history in histories.items():
        live = Live(str(Path(folder) / target), save_dvc_exp=False, dvcyaml=None, report=None)
        for record in history:
            for key in LOGGED:
                live.log_metric(key, record[key])
            live.next_step()
        live.end()
