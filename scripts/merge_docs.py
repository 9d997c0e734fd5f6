#!/usr/bin/env python
"""Refresh README sections from docs/generator.md and docs/download.md (their source)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [("## The synthetic Da-TACOS generator", "## Working with the real Da-TACOS", "docs/generator.md"),
            ("## Working with the real Da-TACOS", "## Benchmarks", "docs/download.md")]
readme = (ROOT / "README.md").read_text()
for start, end, src in SECTIONS:
    body = (ROOT / src).read_text().split("\n", 1)[1].strip().replace("\n### ", "\n#### ")
    a, b = readme.index(start) + len(start), readme.index(end)
    readme = readme[:a] + "\n\n" + body + "\n\n" + readme[b:]
(ROOT / "README.md").write_text(readme)
