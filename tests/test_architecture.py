"""The layout is the data flow: layers import only downwards, and no module imports itself in a circle.

The layers contract lives in pyproject.toml ([tool.importlinter]); docs/architecture.md draws it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def test_layers_import_only_downwards():
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_import_cycles_between_modules():
    g = grimp.build_graph("egovsim")
    graph = nx.DiGraph((m, d) for m in g.modules for d in g.find_modules_directly_imported_by(m))
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, cycles
