"""The params schema: which dataclass validates which ``params.yaml`` section."""

from __future__ import annotations

from typing import Any

from .attribution_inputs import AttributeParams
from .build import EffectsDBParams, Mixed23Params, PoolParams
from .cleaning import CleaningParams
from .embeddings import EmbedParams
from .evaluation import EvalParams
from .fad import FADParams
from .fusion import FuseParams
from .gate import CheckParams
from .mlp import MLPParams
from .params import BaseParams, ParamsError, RuntimeParams, from_dict
from .render import RenderParams
from .unmix import TrainParams

SECTIONS: dict[str, type] = {
    "runtime": RuntimeParams, "base": BaseParams, "render": RenderParams, "pool": PoolParams,
    "build_mixed23": Mixed23Params, "build_effectsdb": EffectsDBParams, "train": TrainParams,
    "evaluate": EvalParams, "attribute": AttributeParams, "embed": EmbedParams,
    "fad_scores": FADParams, "mlp_scores": MLPParams, "fuse": FuseParams,
    "cleaning": CleaningParams, "check_metrics": CheckParams,
}


def validate_all(data: dict[str, Any]) -> dict[str, Any]:
    """Validate every section of a params mapping; unknown or missing sections are an error."""
    schema = SECTIONS
    missing = sorted(set(schema) - set(data))
    if missing:
        raise ParamsError(f"{missing[0]}: missing params section")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise ParamsError(f"{unknown[0]}: unknown params section (known: {sorted(schema)})")
    return {name: from_dict(schema[name], data[name], name) for name in data}
