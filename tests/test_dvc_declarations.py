"""dvc.yaml declares exactly what each stage reads; defaults live only in params.yaml; the
run-cache restores a cell in another clone (issue: trust, parts 4-6)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from declarations import ROOT, import_closure, library_loads_params, params_read

from stages.evaluate import SEED_LISTS
from stages.lib.schema import SECTIONS

DVC = [sys.executable, "-m", "dvc"]


def _stages() -> dict[str, dict]:
    """Every expanded stage of dvc.yaml (``dvc`` resolves foreach / matrix / interpolation)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {stage.addressing: {
            "cmd": stage.cmd, "params": sorted(key for dep in stage.params for key in dep.params),
            "deps": [str(d.def_path) for d in stage.deps if d not in stage.params]}
            for stage in repo.index.stages}


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:
    return _stages()


def _commands(cmd: str | list[str]) -> list[str]:
    return [c for c in (cmd if isinstance(cmd, list) else [cmd])]


def test_every_stage_declares_exactly_the_code_it_imports(stages: dict[str, dict]) -> None:
    for name, stage in stages.items():
        modules = [m for c in _commands(stage["cmd"]) for m in re.findall(r"-m (stages\.\w+)", c)]
        assert modules, f"{name}: no 'python -m stages.<module>' command"
        expected = {str(p) for m in modules for p in import_closure(m)
                    if p.name != "__init__.py"}
        declared = {d for d in stage["deps"] if d.endswith(".py")}
        assert declared == expected, (f"{name}: missing {sorted(expected - declared)}, "
                                      f"not imported {sorted(declared - expected)}")


def test_every_stage_declares_exactly_the_params_it_loads(stages: dict[str, dict]) -> None:
    for name, stage in stages.items():
        dataset = re.search(r"--dataset (?:data/)?(\w+)", " ".join(_commands(stage["cmd"])))
        loaded = set()
        for cmd in _commands(stage["cmd"]):
            for module in re.findall(r"-m (stages\.\w+)", cmd):
                loaded |= {key.replace("{}", dataset.group(1) if dataset else "{}")
                           for key in params_read(module)}
            if "-m stages.evaluate" in cmd:  # reads only the seed list its --seeds-from names
                named = set(re.findall(r"--seeds-from (\S+)", cmd))
                loaded -= {key.split(".")[0] if key.startswith("cleaning.") else key
                           for key in SEED_LISTS if key not in named}
                loaded |= named
        declared = set(stage["params"])
        # a declared key is a loaded section or one of its keys; every loaded one is declared
        for key in declared:
            assert key.split(".")[0] != "runtime", f"{name}: runtime must not rerun anything"
            assert (key in loaded or key.split(".")[0] in loaded), f"{name}: declares {key}, unread"
        for key in loaded:
            assert any(d == key or d.startswith(f"{key}.") for d in declared), \
                f"{name}: reads {key} but does not declare it"


def test_only_entry_points_read_the_params_file() -> None:
    offenders = [p for p in (ROOT / "stages" / "lib").glob("*.py")
                 if p.name not in ("params.py",) and library_loads_params(p)]
    assert offenders == []


def test_the_library_never_imports_an_entry_point() -> None:
    for path in (ROOT / "stages" / "lib").glob("*.py"):
        closure = import_closure(f"stages.lib.{path.stem}")
        assert all(p.parts[:2] == ("stages", "lib") for p in closure), (path, closure)


def _section_classes() -> set[type]:
    found: set[type] = set()
    todo = list(SECTIONS.values())
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.add(cls)
        for hint in typing.get_type_hints(cls).values():
            for arg in (hint, *typing.get_args(hint)):
                if dataclasses.is_dataclass(arg):
                    todo.append(arg)
    return found


def test_params_yaml_is_the_only_source_of_defaults() -> None:
    from stages.lib.sources import SourceSpec

    for cls in _section_classes() - {SourceSpec}:  # SourceSpec: a user-written spec (kind/root)
        with_default = [f.name for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING
                        or f.default_factory is not dataclasses.MISSING]
        assert with_default == [], f"{cls.__name__} has defaults for {with_default}"


def test_dvc_lock_holds_only_current_stages(stages: dict[str, dict]) -> None:
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert sorted(set(lock) - set(stages)) == []


def test_applying_a_profile_keeps_comments(tmp_path: Path) -> None:
    from stages.tools import profile

    out = tmp_path / "params.yaml"
    profile.main([str(ROOT / ".ci" / "profiles" / "smoke.yaml"), "--params",
                  str(ROOT / "params.yaml"), "--out", str(out)])
    original, merged = (ROOT / "params.yaml").read_text(), out.read_text()
    comments = [line.split("#", 1)[1] for line in original.splitlines() if "#" in line]
    assert all(c in merged for c in comments)
    assert "  seeds: [0]" in merged and "n_train: 14" in merged
    assert len(merged.splitlines()) == len(original.splitlines())


@pytest.mark.slow
def test_run_cache_restores_a_training_cell_in_another_clone(tmp_path: Path) -> None:
    """Two clones share one cache: a cell trained in the first is restored, not re-run, by
    ``dvc repro`` in the second (the basis of distributed runs)."""
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           # the stages' `python` is this interpreter, whatever PATH pytest was started with
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file() and not rel.startswith(("data/", "metrics/")):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    (src / "dvc.lock").unlink(missing_ok=True)
    cache = tmp_path / "cache"
    run = {"cwd": src, "env": env, "check": True, "capture_output": True, "text": True}
    subprocess.run([sys.executable, "-m", "stages.tools.profile", ".ci/profiles/smoke.yaml"], **run)
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(["git", "commit", "-qm", "smoke"], **run)
    cell = "train@baseline0-0"
    clones = []
    for name in ("a", "b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(src), str(clone)], **run)
        subprocess.run([*DVC, "cache", "dir", "--local", str(cache)], **{**run, "cwd": clone})
        clones.append(clone)
    first = subprocess.run([*DVC, "repro", cell], **{**run, "cwd": clones[0], "check": False})
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run([*DVC, "repro", cell], **{**run, "cwd": clones[1]})
    log = second.stdout + second.stderr
    assert f"Stage '{cell}' is cached - skipping run" in log, log
    assert "python -m stages.train" not in log  # the training command never ran
    model = Path("data/models/mixed23/contaminated/seed0/vocals.pth")
    assert (clones[1] / model).read_bytes() == (clones[0] / model).read_bytes()
    status = subprocess.run([*DVC, "status", cell], **{**run, "cwd": clones[1]})
    assert "up to date" in status.stdout or status.stdout.strip() == ""
