"""Building Mixed23 / EffectsDB: composition, disjointness, determinism, bad inputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import params_of, tone_stems, write_params, write_stems

from stages import build
from stages.lib.audio import stem_sum
from stages.lib.build import PoolParams, allocate_pool
from stages.lib.params import TARGETS
from stages.lib.readers import read_track_folder

SR = 8000


class _Builder:
    """``python -m stages.build --dataset <name>`` as a module-like object with ``main``."""

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset

    def main(self, argv: list[str]) -> None:
        build.main(["--dataset", self.dataset, *argv])


build_mixed23, build_effectsdb = _Builder("mixed23"), _Builder("effectsdb")


def _pool(root: Path, n: int, prefix: str = "song") -> Path:
    for i in range(n):
        write_stems(root / f"{prefix}{i:02d}", tone_stems(seconds=0.25, seed=i))
    return root


def _params(tmp: Path, **sections: dict) -> Path:
    data = {"base": {"seeds": [0], "sample_rate": SR, "targets": list(TARGETS)},
            "pool": {"seed": 0, "n_clean": 4, "n_label_noise": 2, "n_bleeding": 2, "n_effects": 3},
            "build_mixed23": {}, "build_effectsdb": {}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp / "params.yaml"
    write_params(path, data)
    return path


def _digest(folder: Path) -> str:
    """Digest of every file's bytes (byte-identical outputs are what keeps DVC hashes stable)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _real_params(tmp: Path) -> Path:
    """Params for real-mode Mixed23 from ``tmp/{clean,ln,bl}`` folders."""
    return _params(tmp, build_mixed23={
        "mode": "real", "real_clean": {"root": str(tmp / "clean")},
        "real_label_noise": {"root": str(tmp / "ln")}, "real_bleeding": {"root": str(tmp / "bl")}})


def _build(module, tmp: Path, params: Path, name: str, *extra: str) -> tuple[Path, Path]:
    out, truth = tmp / name, tmp / f"{name}.json"
    module.main(["--params", str(params), "--pool", str(tmp / "pool"), "--out", str(out),
                 "--truth", str(truth), "--quiet", *extra])
    return out, truth


def test_allocate_pool_is_disjoint_and_complete() -> None:
    names = [f"s{i}" for i in range(12)]
    groups = allocate_pool(names, params_of(PoolParams, "pool",
        n_clean=4, n_label_noise=2, n_bleeding=2, n_effects=3))
    flat = [n for g in groups.values() for n in g]
    assert len(flat) == len(set(flat)) == 11
    with pytest.raises(ValueError, match="requested"):
        allocate_pool(names[:5], params_of(PoolParams, "pool",
            n_clean=4, n_label_noise=2, n_bleeding=2, n_effects=3))


def test_mixed23_composition_truth_and_determinism(tmp_path: Path) -> None:
    _pool(tmp_path / "pool", 12)
    params = _params(tmp_path)
    out, truth = _build(build_mixed23, tmp_path, params, "m1")
    manifest = json.loads(truth.read_text())
    assert manifest["counts"] == {"bleeding": 2, "clean": 4, "label_noise": 2}
    for row in manifest["tracks"]:
        track = read_track_folder(out / row["name"], SR)
        original = read_track_folder(tmp_path / "pool" / row["name"], SR)
        if row["corruption"] == "clean":
            assert _digest(out / row["name"]) == _digest(tmp_path / "pool" / row["name"])
        if row["corruption"] == "label_noise":  # the mixture is untouched by label noise
            import numpy as np
            np.testing.assert_allclose(track.mixture, original.mixture, atol=1e-6)
        assert (track.mixture == stem_sum(track.stems)).all()
    again, truth2 = _build(build_mixed23, tmp_path, params, "m2")
    assert _digest(out) == _digest(again) and truth.read_bytes() == truth2.read_bytes()
    other, _ = _build(build_mixed23, tmp_path, _params(tmp_path, build_mixed23={"seed": 1}), "m3")
    assert _digest(other) != _digest(out)


def test_effectsdb_thirds(tmp_path: Path) -> None:
    _pool(tmp_path / "pool", 12)
    _, truth = _build(build_effectsdb, tmp_path, _params(tmp_path), "edb")
    manifest = json.loads(truth.read_text())
    assert manifest["counts"] == {"clean": 4, "distortion": 1, "lowpass": 1, "reverb": 1}
    mixed_clean = {r["name"] for r in manifest["tracks"] if r["corruption"] == "clean"}
    groups = allocate_pool([f"song{i:02d}" for i in range(12)], params_of(
        PoolParams, "pool", n_clean=4, n_label_noise=2, n_bleeding=2, n_effects=3))
    assert mixed_clean == set(groups["clean"])  # both sets share the clean songs


def test_real_mode_reads_folders(tmp_path: Path) -> None:
    for name, n in (("clean", 4), ("ln", 2), ("bl", 2)):
        _pool(tmp_path / name, n, prefix=f"{name}-")
    params = _real_params(tmp_path)
    out = tmp_path / "real"
    build_mixed23.main(["--params", str(params), "--out", str(out), "--truth",
                        str(tmp_path / "real.json"), "--quiet"])
    rows = json.loads((tmp_path / "real.json").read_text())["tracks"]
    assert [r["corruption"] for r in rows] == ["clean"] * 4 + ["label_noise"] * 2 + ["bleeding"] * 2
    assert len([p for p in out.iterdir() if p.is_dir()]) == 8


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"pool": {"n_clean": 20}}, "requested"),
        ({"build_mixed23": {"label_noise": {"kinds": ["shuffle"]}}}, "unknown corruption"),
        ({"build_mixed23": {"mode": "real"}}, "build_mixed23.real_clean"),
        ({"build_mixed23": {"mode": "real", "real_clean": {"root": "/nonexistent"},
                            "real_label_noise": {"root": "/x"}, "real_bleeding": {"root": "/y"}}},
         "not found"),
        ({"build_effectsdb": {"effect_params": {"room_size": 2.0}}}, "room_size"),
        ({"build_effectsdb": {"effects": ["chorus"]}}, "unknown effect"),
    ],
)
def test_bad_inputs_fail_cleanly(tmp_path: Path, sections: dict, message: str,
                                 capsys: pytest.CaptureFixture) -> None:
    _pool(tmp_path / "pool", 12)
    params = _params(tmp_path, **sections)
    module = build_effectsdb if "build_effectsdb" in sections else build_mixed23
    with pytest.raises(SystemExit) as err:
        _build(module, tmp_path, params, "bad")
    assert message in str(err.value)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]


def test_overlap_with_reference_is_refused(tmp_path: Path) -> None:
    _pool(tmp_path / "pool", 12)
    _pool(tmp_path / "reference", 1)  # song00 is in both
    with pytest.raises(SystemExit, match="splits must not overlap"):
        _build(build_mixed23, tmp_path, _params(tmp_path), "ov", "--exclude",
               str(tmp_path / "reference"))
    assert not (tmp_path / "ov").exists()


def test_track_without_all_stems_in_real_folder(tmp_path: Path) -> None:
    _pool(tmp_path / "clean", 4, prefix="c")
    _pool(tmp_path / "ln", 2, prefix="l")
    _pool(tmp_path / "bl", 2, prefix="b")
    (tmp_path / "bl" / "b00" / "drums.wav").unlink()
    params = _real_params(tmp_path)
    with pytest.raises(SystemExit, match="b00: looks like a track .* but has no drums stem"):
        build_mixed23.main(["--params", str(params), "--out", str(tmp_path / "o"), "--truth",
                            str(tmp_path / "o.json"), "--quiet"])
    assert not (tmp_path / "o").exists()


def test_examples_are_written(tmp_path: Path) -> None:
    _pool(tmp_path / "pool", 12)
    _build(build_mixed23, tmp_path, _params(tmp_path), "ex", "--examples", str(tmp_path / "listen"))
    written = sorted(p.name for p in (tmp_path / "listen" / "mixed23").iterdir())
    assert len(written) == 4 and all(n.startswith(("bleeding_", "label_noise_")) for n in written)


def test_duplicate_track_names_across_sources(tmp_path: Path) -> None:
    _pool(tmp_path / "clean", 4, prefix="c")
    _pool(tmp_path / "ln", 2, prefix="c")  # c00, c01 also exist in the clean source
    _pool(tmp_path / "bl", 2, prefix="b")
    params = _real_params(tmp_path)
    with pytest.raises(SystemExit, match="duplicate track name 'c00' across sources"):
        build_mixed23.main(["--params", str(params), "--out", str(tmp_path / "o"), "--truth",
                            str(tmp_path / "o.json"), "--quiet"])
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.json").exists()
