"""Imports flow one way: cli -> pipelines -> stages -> core types (style.md); the SDG loop sits above both the
generators and the dataset layout (no import circle between ``lyra.data`` and ``lyra.generator``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import lyra

PACKAGE = Path(lyra.__file__).parent

# package -> modules it must never import (statically, at any depth of the file, lazy imports included)
FORBIDDEN = {
    "data": ("lyra.generator", "lyra.pipelines", "lyra.cli"),
    "generator": ("lyra.data.writer", "lyra.pipelines", "lyra.cli"),
}


def imported_modules(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module an ``import`` / ``from ... import`` statement of the file names (relative imports resolved
    against the file's package below ``root``)."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                base = f"{parent}.{base}" if base else parent
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_forbidden_imports_are_absent() -> None:
    bad = []
    for sub, banned in FORBIDDEN.items():
        files = sorted((PACKAGE / sub).rglob("*.py"))
        assert files, sub
        for f in files:
            for mod in imported_modules(f):
                if any(mod == b or mod.startswith(b + ".") for b in banned):
                    bad.append(f"{f.relative_to(PACKAGE.parent)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "lyra" / "data" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from lyra.generator import base\n    from . import writer\n"
                     "    from ..pipelines.sdg import run_sdg\n")
    mods = imported_modules(probe, tmp_path)
    assert {"lyra.generator", "lyra.data.writer", "lyra.pipelines.sdg"} <= mods


def test_importing_lyra_data_loads_no_generator() -> None:
    code = ("import sys, lyra.data, lyra.data.writer, lyra.data.reader\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('lyra.generator', 'lyra.pipelines')))\n"
            "print(bad)\n"
            "raise SystemExit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
