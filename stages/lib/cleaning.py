"""The ``cleaning`` params section (the filter / retrain grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .params import check


@dataclass(frozen=True)
class CleaningParams:
    """Datasets cleaned, methods (score folders, ``-pt`` = per-target), ratios retained, and the
    random-removal control (ratios, draws)."""

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    ratios: tuple[float | Literal["auto"], ...]
    auto_min_ratio: float
    random_ratios: tuple[float, ...]
    random_draws: tuple[int, ...]

    def __post_init__(self) -> None:
        check(len(self.methods) > 0, "cleaning.methods", "needs at least one method")
        check(len(self.datasets) > 0, "cleaning.datasets", "needs at least one dataset")
        for dataset in self.datasets:
            check(dataset in ("mixed23", "effectsdb"), "cleaning.datasets",
                  f"unknown dataset {dataset!r} (mixed23 | effectsdb)")
        for ratio in self.ratios:
            check(ratio == "auto" or 0.0 < ratio <= 1.0, "cleaning.ratios",
                  f"{ratio} is outside (0, 1] (or 'auto')")
        check(0.0 < self.auto_min_ratio <= 1.0, "cleaning.auto_min_ratio", "must be in (0, 1]")
        check("random" not in {m.removesuffix("-pt") for m in self.methods}, "cleaning.methods",
              "'random' names the random-removal control (cleaning.random_ratios), not a method")
        for ratio in self.random_ratios:
            check(_number(ratio) and 0.0 < ratio <= 1.0, "cleaning.random_ratios",
                  f"{ratio!r} is not a proportion in (0, 1]")
        check(all(_number(d) and isinstance(d, int) and d >= 0 for d in self.random_draws)
              and len(set(self.random_draws)) == len(self.random_draws), "cleaning.random_draws",
              "must be distinct integers >= 0")
        check(not self.random_ratios or len(self.random_draws) >= 2, "cleaning.random_draws",
              "a random control needs at least two draws (a mean over draws)")


def _number(value: object) -> bool:
    """A real number, not a bool (YAML ``true`` is an int to Python but not to DVC's paths)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
