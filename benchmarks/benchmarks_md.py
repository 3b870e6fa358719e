"""Rewrite one '## Section' of BENCHMARKS.md, leaving the other sections as they are."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_section(text: str, heading: str, path: Path = DEFAULT) -> None:
    """Replace the section that starts with ``heading`` (e.g. "## Replay") by ``text``
    (which starts with that heading), or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    body = text.rstrip("\n") + "\n"
    if pattern.search(old):
        new = pattern.sub(lambda _: body + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + body
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")
