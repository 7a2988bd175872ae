"""Safe loading, audited over the source: no pickle-capable loaders, offline hubs, opt-in remote code.

Behavioural counterparts: ``test_unmix.test_pickled_payload_is_refused`` (a pickled checkpoint
is refused), ``test_embeddings.test_local_weights_load_with_the_network_blocked``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "stages").rglob("*.py"))


def _calls(name: str) -> list[tuple[Path, ast.Call]]:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    found.append((path, node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_torch_load_is_weights_only() -> None:
    calls = _calls("load")
    torch_loads = [(p, c) for p, c in calls if isinstance(c.func, ast.Attribute)
                   and getattr(c.func.value, "id", "") == "torch"]
    assert torch_loads, "expected torch.load calls to audit"
    for path, call in torch_loads:
        value = _keyword(call, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno}"


def test_no_unsafe_deserialisers() -> None:
    from stages.lib.params import _UniqueKeyLoader

    assert issubclass(_UniqueKeyLoader, yaml.SafeLoader)
    for path in SOURCES:
        text = path.read_text()
        assert "import pickle" not in text, path
        # yaml.load only with the SafeLoader subclass that refuses duplicate keys
        assert text.count("yaml.load(") == text.count("yaml.load(text, Loader=_UniqueKeyLoader)"), path
        assert "yaml.unsafe_load" not in text and "allow_pickle=True" not in text, path
    for path, call in _calls("load"):  # numpy loads refuse pickles explicitly
        if isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "np":
            value = _keyword(call, "allow_pickle")
            assert isinstance(value, ast.Constant) and value.value is False, f"{path}:{call.lineno}"


def test_hub_loads_are_local_and_remote_code_is_opt_in() -> None:
    calls = _calls("from_pretrained")
    assert calls
    for path, call in calls:
        local = _keyword(call, "local_files_only")
        assert isinstance(local, ast.Constant) and local.value is True, f"{path}:{call.lineno}"
        remote = _keyword(call, "trust_remote_code")
        # never a literal True: only the user's params value (default false) may switch it on
        assert remote is None or not isinstance(remote, ast.Constant), f"{path}:{call.lineno}"
    from stages.lib.params import read_yaml

    assert read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")["embed"][
        "trust_remote_code"] is False


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("0", "0")])
def test_hub_is_offline_unless_the_user_opts_in(preset: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",)}
    if preset is not None:
        env["HF_HUB_OFFLINE"] = preset
    out = subprocess.run([sys.executable, "-c", "import os, stages.lib.embeddings; "
                          "print(os.environ['HF_HUB_OFFLINE'])"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == expected


def test_stages_write_only_their_declared_outputs(tmp_path: Path) -> None:
    """A scoring stage run with HOME and the cache dirs pointed at an empty folder writes
    nothing there: every file it creates is under the paths it was given."""
    from conftest import tone_stems, write_params, write_stems

    for i in range(2):
        write_stems(tmp_path / "work" / "set" / f"s{i}", tone_stems(seconds=0.5, seed=i))
    write_params(tmp_path / "work" / "params.yaml",
                 {"base": {"sample_rate": 8000}, "embed": {"frame_seconds": 0.05, "n_mels": 16}})
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "HF_HOME": str(home / "hf"), "TORCH_HOME": str(home / "torch"),
           "MPLCONFIGDIR": str(home / "mpl"), "PYTHONPATH": str(ROOT)}
    before = {p for p in (tmp_path / "work").rglob("*")}
    subprocess.run([sys.executable, "-m", "stages.embed", "--dataset", "set", "--out", "emb",
                    "--cost", "cost.json", "--quiet"], cwd=tmp_path / "work", env=env,
                   check=True, capture_output=True)
    created = {p.relative_to(tmp_path / "work").parts[0]
               for p in (tmp_path / "work").rglob("*") if p not in before}
    assert created == {"emb", "cost.json"}
    assert not any(home.rglob("*")), sorted(home.rglob("*"))
