"""Da-TACOS metadata JSON: ``{work_id: {perf_id: record}}`` -> {perf_id: record}.

Metadata is optional: a root without ``da-tacos_metadata/`` still indexes, with
empty titles and artists.
"""

from __future__ import annotations

import json
from pathlib import Path

from coversearch.data.layout import metadata_paths
from coversearch.errors import DataError

FIELDS = ("work_title", "work_artist", "perf_title", "perf_artist", "release_year", "instrumental")


def load_metadata(root: str | Path) -> dict[str, dict]:
    """Read every metadata file under ``root`` into {perf_id: record}.

    Raises:
        DataError: a metadata file exists but is not valid JSON of that shape.
    """
    out: dict[str, dict] = {}
    for path in metadata_paths(root):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for work_id, perfs in data.items():
                for perf_id, rec in perfs.items():
                    out[perf_id] = {f: str(rec.get(f, "")) for f in FIELDS} | {"work_id": work_id}
                    if "source" in rec:  # written by `coversearch extract`: the audio file
                        out[perf_id]["source"] = str(rec["source"])
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a Da-TACOS metadata file ({e})") from None
    return out
