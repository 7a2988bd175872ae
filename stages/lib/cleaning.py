"""The ``cleaning`` params section (the filter / retrain grid)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .params import check

MODES = ("unified", "per_target")


@dataclass(frozen=True)
class CleaningParams:
    """Datasets cleaned, methods (score folders), modes (one kept list for every target, or
    one per target model ranked by its own score), ratios retained, and the random-removal
    control (ratios, draws)."""

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    modes: tuple[str, ...]
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
        check("random" not in self.methods, "cleaning.methods",
              "'random' names the random-removal control (cleaning.random_ratios), not a method")
        for method in self.methods:
            check(not method.endswith("-pt") and not method.endswith("_per_target"),
                  "cleaning.methods", f"{method!r}: the per-target mode is cleaning.modes: "
                  "[per_target], not part of a method's name")
        check(len(self.modes) > 0 and len(set(self.modes)) == len(self.modes)
              and set(self.modes) <= set(MODES), "cleaning.modes",
              f"must be distinct values of {list(MODES)}")
        for ratio in self.random_ratios:
            check(_number(ratio) and 0.0 < ratio <= 1.0, "cleaning.random_ratios",
                  f"{ratio!r} is not a proportion in (0, 1]")
        check(all(_number(d) and isinstance(d, int) and d >= 0 for d in self.random_draws)
              and len(set(self.random_draws)) == len(self.random_draws), "cleaning.random_draws",
              "must be distinct integers >= 0")
        check(not self.random_ratios or len(self.random_draws) >= 2, "cleaning.random_draws",
              "a random control needs at least two draws (a mean over draws)")


def condition(method: str, mode: str, ratio: float | str) -> str:
    """The name of a cleaned condition in the metrics: ``<method>_r<ratio>`` (unified) or
    ``<method>_per_target_r<ratio>``; its files live under ``<mode>/<method>_r<ratio>``."""
    return f"{method}{'' if mode == 'unified' else '_' + mode}_r{ratio}"


def parse_condition(name: str) -> tuple[str, str, str] | None:
    """``(method, mode, ratio)`` of a cleaned condition's name (:func:`condition`), else None."""
    match = re.fullmatch(r"(.+)_r(auto|[0-9.]+)", name)
    if match is None:
        return None
    method, ratio = match[1], match[2]
    for mode in MODES[1:]:
        if method.endswith(f"_{mode}"):
            return method.removesuffix(f"_{mode}"), mode, ratio
    return method, MODES[0], ratio


def cells(params: CleaningParams, dataset: str) -> list[tuple[str, str, float | str]]:
    """``(method, mode, ratio)`` of every cleaned condition of ``dataset`` (none if not cleaned)."""
    if dataset not in params.datasets:
        return []
    return [(m, mode, r) for m in params.methods for mode in params.modes for r in params.ratios]


def _number(value: object) -> bool:
    """A real number, not a bool (YAML ``true`` is an int to Python but not to DVC's paths)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
