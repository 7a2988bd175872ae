"""The params schema: which dataclass validates which ``params.yaml`` section."""

from __future__ import annotations

from typing import Any

from .attribution_inputs import AttributeParams
from .datasets import EffectsDBParams, Mixed23Params, PoolParams
from .embeddings import EmbedParams
from .evaluation import EvalParams
from .fad import FADParams
from .mlp import MLPParams
from .params import BaseParams, ParamsError, from_dict
from .render import RenderParams
from .unmix import TrainParams


def _late() -> dict[str, type]:
    # stage-local sections live next to their stage; imported lazily to avoid cycles
    from ..check_metrics import CheckParams
    from .cleaning import CleaningParams
    from .fusion import FuseParams

    return {"fad_scores": FADParams, "check_metrics": CheckParams, "cleaning": CleaningParams,
            "fuse": FuseParams}


SECTIONS: dict[str, type] = {
    "base": BaseParams, "render": RenderParams, "pool": PoolParams,
    "build_mixed23": Mixed23Params, "build_effectsdb": EffectsDBParams, "train": TrainParams,
    "evaluate": EvalParams, "attribute": AttributeParams, "embed": EmbedParams,
    "mlp_scores": MLPParams,
}


def validate_all(data: dict[str, Any]) -> dict[str, Any]:
    """Validate every section of a params mapping; unknown sections are an error."""
    schema = {**SECTIONS, **_late()}
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise ParamsError(f"{unknown[0]}: unknown params section (known: {sorted(schema)})")
    return {name: from_dict(schema[name], data[name], name) for name in data}
