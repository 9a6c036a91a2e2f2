"""The import rules of docs/architecture.md, checked on the source (every import, lazy ones too)."""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "xasmpi"
DOC = PKG.parent / "docs" / "architecture.md"
CORE = ("exafs", "xanes", "analysis", "data")
#: what the science core may import from xasmpi besides itself (bottom-level helpers)
CORE_MAY_IMPORT = ("xasmpi.errors", "xasmpi.external")

def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path):
    """(line, imported module, imported names) of every import statement in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, tuple(a.name for a in node.names)


def _rel(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def test_modules_are_found():
    names = {_rel(p) for p in _modules()}
    assert {"config.py", "exafs/kernel.py", "data/crystals.py", "store/layout.py", "parallel/comm.py"} <= names


def test_science_core_imports_nothing_above_it():
    bad = []
    for p in _modules():
        if p.relative_to(PKG).parts[0] not in CORE:
            continue
        for line, mod, _ in _imports(p):
            top = mod.split(".")[0]
            if top in ("mpi4py", "h5py"):
                bad.append(f"{_rel(p)}:{line}: {mod}")
            elif top == "xasmpi" and not (mod.split(".")[1:2] and mod.split(".")[1] in CORE) \
                    and mod not in CORE_MAY_IMPORT:
                bad.append(f"{_rel(p)}:{line}: {mod}")
    assert not bad, "science core imports upward:\n" + "\n".join(bad)


@pytest.mark.parametrize("lib, home", [("h5py", "store"), ("mpi4py", "parallel")])
def test_h5py_only_in_store_and_mpi4py_only_in_parallel(lib, home):
    bad = [f"{_rel(p)}:{line}" for p in _modules() for line, mod, _ in _imports(p)
           if mod.split(".")[0] == lib and p.relative_to(PKG).parts[0] != home]
    assert not bad, f"{lib} imported outside xasmpi/{home}/: {bad}"


def test_no_module_imports_another_modules_private_names():
    offenders = {}
    for p in _modules():
        tree = ast.parse(p.read_text())
        aliases = {}  # local name -> xasmpi module, for attribute access like fit_stage._data_for
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("xasmpi"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        found.append(f"{node.module}.{a.name}")
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("xasmpi") and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{aliases[node.value.id]}.{node.attr}")
        if found:
            offenders[_rel(p)] = sorted(set(found))
    assert not offenders, f"private names used across modules (make them public or move them): {offenders}"


def test_architecture_doc_maps_every_module():
    """Every module is in the module map of docs/architecture.md (by path, or its package row
    for ``commands/``, ``report/``, ``stages/``, ``demo/``)."""
    doc = DOC.read_text()
    rows = set(re.findall(r"^\| `([^`]+)`", doc, flags=re.M))
    rows |= {m for r in re.findall(r"^\| `[^`]+`, `([^`]+)`", doc, flags=re.M) for m in [r]}
    packages = {"commands", "report", "stages", "demo"}
    missing = []
    for p in _modules():
        rel = _rel(p)
        parts = p.relative_to(PKG).parts
        if p.name == "__init__.py" and len(parts) > 1 or rel in ("__init__.py", "__main__.py"):
            continue
        if parts[0] in packages and (f"{parts[0]}/" in rows or f"{parts[0]}/*.py" in rows):
            continue
        if rel not in rows:
            missing.append(rel)
    assert not missing, f"not in the module map of {DOC.name}: {missing}"
