"""Params validation: every stage section loads; bad keys fail with the key in the message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import params_of

from stages.lib.params import BaseParams, ParamsError, check, from_dict, load_base, load_section, read_yaml
from stages.lib.render import RenderParams
from stages.lib.schema import validate_all
from stages.tools import profile as apply_profile

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {"render": RenderParams}


@dataclass(frozen=True)
class Inner:
    gain_db: float = 0.0


@dataclass(frozen=True)
class Example:
    count: int
    ratio: float = 0.5
    names: tuple[str, ...] = ("a",)
    inner: Inner = Inner()
    maybe: int | None = None

    def __post_init__(self) -> None:
        check(0.0 < self.ratio <= 1.0, "example.ratio", "must be in (0, 1]")


def test_repository_params_load() -> None:
    base = load_base(ROOT / "params.yaml")
    assert base.targets == ("vocals", "bass", "drums", "other")
    for section, cls in SECTIONS.items():
        assert isinstance(load_section(ROOT / "params.yaml", section, cls), cls)
    validated = validate_all(read_yaml(ROOT / "params.yaml"))
    assert set(validated) == set(read_yaml(ROOT / "params.yaml"))


@pytest.mark.parametrize("profile", sorted((ROOT / ".ci" / "profiles").glob("*.yaml")))
def test_profiles_resolve(profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "params.yaml"
    apply_profile.main([str(profile), "--params", str(ROOT / "params.yaml"), "--out", str(out)])
    merged, default, overrides = read_yaml(out), read_yaml(ROOT / "params.yaml"), read_yaml(profile)
    for section, values in default.items():  # merged, not replaced: what it leaves stays
        for key, value in values.items():
            if key not in overrides.get(section, {}):
                assert merged[section][key] == value, f"{section}.{key}"
    validate_all(merged)


def test_profile_typo_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"epoch": 3}}))
    with pytest.raises(SystemExit, match="train.epoch: unknown key"):
        apply_profile.main([str(bad), "--params", str(ROOT / "params.yaml"), "--out",
                            str(tmp_path / "o.yaml")])
    assert not (tmp_path / "o.yaml").exists()
    bad.write_text(yaml.safe_dump({"trian": {"epochs": 3}}))
    with pytest.raises(SystemExit, match="unknown section"):
        apply_profile.main([str(bad), "--params", str(ROOT / "params.yaml"), "--out",
                            str(tmp_path / "o.yaml")])


def test_valid_mapping_is_typed_and_frozen() -> None:
    obj = from_dict(Example, {"count": 3, "ratio": 1, "names": ["x", "y"],
                              "inner": {"gain_db": -3}}, "example")
    assert obj.ratio == 1.0 and isinstance(obj.ratio, float)
    assert obj.names == ("x", "y") and obj.inner.gain_db == -3.0
    with pytest.raises(AttributeError):
        obj.count = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"count": 1, "ratoi": 0.5}, "example.ratoi"),
        ({"count": "three"}, "example.count"),
        ({"count": 1.5}, "example.count"),
        ({"count": True}, "example.count"),
        ({}, "example.count"),
        ({"count": 1, "ratio": 1.5}, "example.ratio"),
        ({"count": 1, "names": "abc"}, "example.names"),
        ({"count": 1, "names": ["a", 2]}, "example.names[1]"),
        ({"count": 1, "inner": {"gain": 1}}, "example.inner.gain"),
        ({"count": 1, "maybe": "x"}, "example.maybe"),
    ],
)
def test_bad_values_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ParamsError) as err:
        from_dict(Example, raw, "example")
    assert str(err.value).startswith(key + ":")


def test_optional_accepts_null() -> None:
    assert from_dict(Example, {"count": 1, "maybe": None}, "example").maybe is None


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_base(tmp_path / "missing.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("base: [1, 2")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_base(bad)
    bad.write_text(yaml.safe_dump({"render": {}}))
    with pytest.raises(ParamsError, match="missing section 'base'"):
        load_base(bad)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"targets": ["vocals", "bass"]}, "base.targets"),
        ({"seeds": []}, "base.seeds"),
        ({"seeds": [1, 1]}, "base.seeds"),
        ({"sample_rate": 100}, "base.sample_rate"),
    ],
)
def test_base_ranges(override: dict, key: str) -> None:
    with pytest.raises(ParamsError, match=f"^{key}:"):
        params_of(BaseParams, "base", **override)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"n_train": 0}, "render.n_train"),
        ({"excerpt_seconds": 0.1}, "render.excerpt_seconds"),
        ({"tempo_bpm": [120, 60]}, "render.tempo_bpm"),
        ({"velocity": [0, 200]}, "render.velocity"),
        ({"vocals_programs": [300]}, "render.vocals_programs"),
        ({"tempo_bpm": [60]}, "render.tempo_bpm"),
        ({"voices": "ssatb"}, "render.voices"),
        ({"subtype": "PCM_8"}, "render.subtype"),
        ({"stem_level_db": -1.0}, "render.stem_level_db"),
        ({"corpus": " "}, "render.corpus"),
    ],
)
def test_render_ranges(override: dict, key: str) -> None:
    with pytest.raises(ParamsError, match=f"^{key}"):
        params_of(RenderParams, "render", **override)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"random_draws": [0, 0, 1]}, "cleaning.random_draws"),  # one draw counted twice
        ({"random_draws": [-1, 2]}, "cleaning.random_draws"),
        ({"random_draws": [3]}, "cleaning.random_draws"),  # a mean needs two draws
        ({"random_ratios": [0.0]}, "cleaning.random_ratios"),
        ({"random_ratios": [1.5]}, "cleaning.random_ratios"),
        ({"random_ratios": [True]}, "cleaning.random_ratios"),  # YAML true: not a proportion
        ({"random_draws": [True, False]}, "cleaning.random_draws"),
        ({"methods": ["fad", "random"]}, "cleaning.methods"),  # the control's reserved name
        ({"methods": ["unlearn-pt"]}, "cleaning.methods"),  # the old per-target suffix
        ({"methods": ["fad_per_target"]}, "cleaning.methods"),  # would collide with a mode's name
        ({"modes": []}, "cleaning.modes"),
        ({"modes": ["unified", "unified"]}, "cleaning.modes"),
        ({"modes": ["per_song"]}, "cleaning.modes"),
    ],
)
def test_random_control_ranges(override: dict, key: str) -> None:
    from stages.lib.cleaning import CleaningParams

    with pytest.raises(ParamsError, match=f"^{key}"):
        params_of(CleaningParams, "cleaning", **override)
    assert params_of(CleaningParams, "cleaning", random_ratios=[], random_draws=[]).random_ratios == ()


def test_cleaned_condition_names_round_trip() -> None:
    """A cleaned cell's name in the metrics gives back its method, mode and ratio."""
    from stages.lib.cleaning import condition, parse_condition

    for method in ("unlearn", "unlearn+fad", "unlearn-naive"):
        for mode in ("unified", "per_target"):
            for ratio in (0.5, "auto"):
                assert parse_condition(condition(method, mode, ratio)) == (method, mode, str(ratio))
    assert condition("fad", "unified", 0.5) == "fad_r0.5"  # the names metrics had before modes
    assert parse_condition("contaminated") is None
