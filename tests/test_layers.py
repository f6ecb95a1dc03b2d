"""Layers point down (docs/architecture.md): each module imports only from its own layer or
the layers below it. Read from the source, every import statement, at any depth."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("edge", "facedata", "train", "export")
# Bottom first. A module may import from its own layer and the ones before it.
LAYERS = ("edge.shared", "edge", "facedata", "edge.measure", "train", "export")
ALLOWED = {
    "edge.shared": {"edge.shared"},
    "edge": {"edge.shared", "edge"},
    "facedata": {"edge.shared", "edge", "facedata"},
    "edge.measure": {"edge.shared", "edge", "facedata", "edge.measure"},
    "train": {"edge.shared", "edge", "facedata", "train"},
    "export": {"edge.shared", "edge", "facedata", "train", "export"},
}
# The one command line dispatches to the measuring commands: there, and only inside the
# functions that run them, it may import edge.measure.
LAZY_ONLY = {("edge.__main__", "edge.measure"), ("edge.__main__", "facedata")}


def layer_of(module: str) -> str | None:
    for layer in ("edge.shared", "edge.measure", "edge", "facedata", "train", "export"):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def imports(path: Path) -> list[tuple[str, bool]]:
    """Every project module ``path`` imports, and whether the import is at module level."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        names = [n for n in names if layer_of(n)]
        found += [(n, id(node) in top) for n in names]
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_runs_against_the_layers():
    wrong = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_of(path)
            mine = layer_of(module)
            for name, top_level in imports(path):
                theirs = layer_of(name)
                if theirs in ALLOWED[mine]:
                    continue
                if (module, theirs) in LAZY_ONLY and not top_level:
                    continue
                wrong.append(f"{module} ({mine}) imports {name} ({theirs})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_edge_run_loads_nothing_of_the_measuring_tools_or_training():
    code = ("import sys\nimport edge.__main__, edge.pipeline, edge.config\n"
            "edge.config.load_config(None)\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('facedata', 'train', 'export')"
            " or m.startswith('edge.measure')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_layer_rules_themselves_are_what_the_architecture_page_states():
    page = (ROOT / "docs" / "architecture.md").read_text()
    for layer in LAYERS:
        assert f"`{layer}`" in page


def test_the_readme_is_short_and_every_link_into_docs_resolves():
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
