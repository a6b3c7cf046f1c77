"""The package's layout: imports run one way down the stages (DESIGN.md), and no module grows unbounded."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[1] / "kit"
# stage of each top-level part of kit: a module may import its own stage and those below it
STAGES = {"config": 0, "files": 0, "log": 0, "errors": 0, "data": 1, "features": 2, "temporal": 3, "results": 4}
EXEMPT = {"__main__", "compare", "bench", "__init__"}  # experiments and the command line import from anywhere


def _part(module: str) -> str:
    return module.split(".")[1] if module.startswith("kit.") and module.count(".") >= 1 else ""


@pytest.mark.parametrize("path", sorted(KIT.rglob("*.py")), ids=lambda p: str(p.relative_to(KIT)))
def test_imports_run_down_the_stages(path):
    rel = path.relative_to(KIT)
    part = rel.parts[0].removesuffix(".py")
    if part in EXEMPT:
        return
    mine = STAGES[part]
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            other = _part(name)
            if other in STAGES:
                assert STAGES[other] <= mine, f"{rel} (stage {part}) imports {name} (stage {other}): upward"
            assert other not in EXEMPT - {"__init__"}, f"{rel} imports {name}: only the command line may"
