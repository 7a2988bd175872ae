"""What each DVC stage really reads, derived from the code (used by test_dvc_declarations.py).

* code: the import closure of the stage's module inside the ``stages`` package (module-level and
  function-level imports, ``__init__`` files left out: they are empty);
* params: the sections an entry point loads with ``load_section(..., "<section>", ...)`` (an
  f-string section such as ``f"build_{args.dataset}"`` becomes the pattern ``build_{}``) and the
  ``base`` keys it reads from ``load_base(...)``; ``runtime`` is never a declaration.

    python tests/declarations.py stages.train     # print both for one module
    python tests/declarations.py --write          # rewrite the .py deps of dvc.yaml in place
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str) -> Path:
    """``stages.lib.io`` -> ``<root>/stages/lib/io.py``."""
    return ROOT / (module.replace(".", "/") + ".py")


def _imports(module: str) -> set[str]:
    tree = ast.parse(module_file(module).read_text())
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("stages"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if module_file(sub).is_file() else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("stages."))
    return {m for m in found if module_file(m).is_file()}


def import_closure(module: str) -> set[Path]:
    """Files of every project module ``module`` imports, directly or not, itself included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_imports(current) - seen)
    return {module_file(m).relative_to(ROOT) for m in seen}


def params_read(module: str) -> set[str]:
    """Sections (``train``) and base keys (``base.seeds``) the entry point ``module`` loads."""
    tree = ast.parse(module_file(module).read_text())
    read: set[str] = set()
    base_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_section":
            arg = node.args[1]
            if isinstance(arg, ast.Constant):
                read.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                read.add("".join(v.value if isinstance(v, ast.Constant) else "{}"
                                 for v in arg.values))
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "load_base"):
            base_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            value = node.value
            if isinstance(value, ast.Name) and value.id in base_names:
                read.add(f"base.{node.attr}")
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "load_base":
                read.add(f"base.{node.attr}")
    return read


def library_loads_params(path: Path) -> bool:
    """Whether a library module reads the params file itself (only entry points may)."""
    text = path.read_text()
    return bool(re.search(r"\b(load_section|load_base|load_runtime)\(", text))


def rewrite_code_deps(dvc_yaml: Path) -> None:
    """Replace each stage's ``stages/*.py`` deps with its modules' import closure (in place,
    comments and layout kept): the declarations test then passes by construction."""
    lines = dvc_yaml.read_text().splitlines()
    out: list[str] = []
    modules: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^  \w", line):  # a new stage
            modules = []
            j = i + 1
            while j < len(lines) and not re.match(r"^  \w", lines[j]):
                modules += re.findall(r"-m (stages\.\w+)", lines[j])
                j += 1
        code = re.match(r"^(\s+)- stages/\S+\.py$", line)
        if code:
            indent = code.group(1)
            while i < len(lines) and re.match(r"^\s+- stages/\S+\.py$", lines[i]):
                i += 1
            files = sorted({str(p) for m in modules for p in import_closure(m)
                            if p.name != "__init__.py"})
            out += [f"{indent}- {f}" for f in files]
            continue
        out.append(line)
        i += 1
    dvc_yaml.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        rewrite_code_deps(ROOT / "dvc.yaml")
    for name in sys.argv[1:]:
        if name != "--write":
            print(name, sorted(str(p) for p in import_closure(name)), sorted(params_read(name)))
