"""Imports flow one way: leaves -> data -> features -> model -> index ->
evaluate -> api -> cli (STYLE.md). Checked on the source, including imports
inside functions."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "coversearch"

RANK = {
    "errors": 0, "config": 0, "_io": 0, "_background": 0,
    "data": 1, "download": 1, "synth": 1, "audio": 1,
    "features": 2, "align": 2,
    "model": 3,
    "index": 4,
    "evaluate": 5, "scale": 5,
    "rerank": 6, "adapt": 6, "compare": 6, "calibrate": 6,
    "report": 6,
    "api": 7,
    "cli": 8,
    "serve": 8,
}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_imports_flow_one_way():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        mod = ".".join(rel.parts)
        stage = _stage(mod) or "__init__"
        if stage == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("coversearch"):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("coversearch")]
            else:
                continue
            for t in targets:
                ts = _stage(t)
                if ts and ts != stage and RANK[ts] > RANK[stage]:
                    bad.append(f"{mod} imports {t}")
    assert not bad, bad


def test_light_modules_do_not_import_torch():
    for sub in ["data", "features", "index", "evaluate", "align", "report"]:
        for path in (PKG / sub).rglob("*.py"):
            src = path.read_text()
            assert "import torch" not in src, path
