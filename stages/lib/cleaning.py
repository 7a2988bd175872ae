"""The ``cleaning`` params section (the filter / retrain grid)."""

from __future__ import annotations

from dataclasses import dataclass

from .params import check


@dataclass(frozen=True)
class CleaningParams:
    """Methods (score folders, ``-pt`` = per-target) and ratios retained."""

    methods: tuple[str, ...] = ("unlearn", "fad", "mlp")
    ratios: tuple[float, ...] = (0.5,)

    def __post_init__(self) -> None:
        check(len(self.methods) > 0, "cleaning.methods", "needs at least one method")
        for ratio in self.ratios:
            check(0.0 < ratio <= 1.0, "cleaning.ratios", f"{ratio} is outside (0, 1]")
