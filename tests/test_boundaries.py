"""Package boundaries (the three packages named at the end of the README): read from the import statements of
the source, no import executed.

- supernet/ imports neither tune nor analysis (nor ray);
- analysis/ imports neither supernet nor tune, nor torch nor ray (it reads Parquet and its metadata);
- supernet/compact.py does not import supernet/dag.py, directly or through another module: the two are linked
  only by the architecture spec.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            mod = ".".join([*base, *([node.module] if node.module else [])])
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from . import dag` imports supernet.dag
        elif (  # importlib.import_module("pkg.mod") with a constant name
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            name = node.args[0].value
            if name.startswith(".") and len(node.args) > 1:  # relative to the package given
                name = ".".join(package) + name
            out.add(name.lstrip("."))
    return out


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of a project module (``supernet.spec`` -> supernet/spec.py), or None if not one."""
    base = root.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def imported_closure(path: Path, package: str, root: Path = ROOT) -> set[str]:
    """Every module of ``package`` that ``path`` imports, directly or through other modules of ``package``."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        for m in imported_modules(todo.pop(), root):
            if m.split(".")[0] != package or m in seen:
                continue
            seen.add(m)
            f = module_file(m, root)
            if f is not None:
                todo.append(f)
    return seen


def offending(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        hits = sorted(m for m in imported_modules(path) if m.split(".")[0] in forbidden)
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_imported_modules_reads_relative_and_absolute_imports(tmp_path):
    # the checker itself, on the forms it must see
    src = tmp_path / "supernet" / "probe.py"
    src.parent.mkdir()
    src.write_text(
        "import ray.tune\nfrom analysis.load import x\nfrom .dag import Supernet\nfrom . import dag\n"
        "import importlib\nimportlib.import_module('tune.launch')\n"
    )
    mods = imported_modules(src, root=tmp_path)
    assert {"ray.tune", "analysis.load", "supernet.dag", "supernet.dag.Supernet", "tune.launch"} <= mods


def test_imported_closure_follows_imports_through_the_package(tmp_path):
    pkg = tmp_path / "supernet"
    pkg.mkdir()
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("import torch\n")
    assert {"supernet.b", "supernet.c"} <= imported_closure(pkg / "a.py", "supernet", root=tmp_path)


def test_supernet_imports_neither_tune_nor_analysis_nor_ray():
    assert offending("supernet", ("tune", "analysis", "ray")) == {}


def test_analysis_imports_neither_supernet_nor_tune_nor_torch_nor_ray():
    assert offending("analysis", ("supernet", "tune", "torch", "ray")) == {}


def test_compact_does_not_import_dag():
    # directly or through another module of supernet/ (supernet.stages, say, imports dag)
    mods = imported_closure(ROOT / "supernet" / "compact.py", "supernet")
    assert not {m for m in mods if m == "supernet.dag" or m.startswith("supernet.dag.")}, sorted(mods)


def test_trial_setup_module_needs_neither_torch_nor_the_supernet():
    # tune/setup.py travels to every Tune actor; a trainable that builds no network (bench/sweep.py's floor)
    # must be able to unpickle it without importing torch (TYPE_CHECKING imports are not executed)
    tree = ast.parse((ROOT / "tune" / "setup.py").read_text())
    runtime = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    mods = {a.name for n in runtime if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module or "" for n in runtime if isinstance(n, ast.ImportFrom)}
    assert mods <= {"__future__", "dataclasses", "typing"}, f"tune/setup.py imports {mods} at run time"
