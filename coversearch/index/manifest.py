"""The index manifest (``manifest.json``): what was built, from what, how well.

``format_version`` is bumped whenever the folder layout or a field's meaning
changes; a reader refuses other versions rather than guessing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from coversearch.errors import IndexMismatchError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """Sidecar of an index folder.

    Attributes:
        format_version: layout version (:data:`FORMAT_VERSION`).
        model_hash: hash of the encoder checkpoint that produced the vectors.
        model_name: checkpoint file name, for humans.
        feature: chroma feature embedded (``hpcp``, ``crema``, ``cens``).
        hop: frame hop (samples at 44.1 kHz) of the prepared features.
        dim: embedding dimension D.
        metric: always ``cosine`` (vectors are unit length).
        count: number of items N (= vectors rows = items rows = FAISS ntotal).
        index_kind: ``flat``, ``hnsw`` or ``ivfpq``.
        index_params: parameters of the index kind, plus ``note``.
        recall_at_10: recall@10 of the index vs exact flat search on a sample
            of up to 1000 queries (1.0 for flat).
        query_latency_ms: mean single-query search latency on that sample.
        source: data path the index was built from.
        created: ISO-8601 UTC build time.
        version: coversearch version that built it.
        files: ``{name: {"bytes": int, "sha256": str}}`` of the other files.
        extra: free-form dict (cache path, skipped files, ...).
    """

    model_hash: str
    dim: int
    count: int
    index_kind: str
    format_version: int = FORMAT_VERSION
    model_name: str = ""
    feature: str = ""
    hop: int = 0
    metric: str = "cosine"
    index_params: dict = field(default_factory=dict)
    recall_at_10: float = 1.0
    query_latency_ms: float = 0.0
    source: str = ""
    created: str = ""
    version: str = ""
    files: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "manifest") -> "Manifest":
        """Build from a dict, rejecting unknown versions and missing fields.

        Raises:
            IndexMismatchError: wrong format version, missing or unknown field.
        """
        if not isinstance(d, dict):
            raise IndexMismatchError(f"{where}: not a JSON object")
        v = d.get("format_version")
        if v != FORMAT_VERSION:
            raise IndexMismatchError(f"{where}: format_version {v!r}, this coversearch reads {FORMAT_VERSION}; rebuild the index")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - d.keys())
        if missing:
            raise IndexMismatchError(f"{where}: missing fields {missing}")
        unknown = sorted(d.keys() - names)
        if unknown:
            raise IndexMismatchError(f"{where}: unknown fields {unknown}")
        try:
            m = cls(**d)
            int(m.dim), int(m.count)
        except (TypeError, ValueError) as e:
            raise IndexMismatchError(f"{where}: {e}") from None
        return m

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Manifest":
        """Read ``manifest.json``.

        Raises:
            IndexMismatchError: missing, not JSON, or not a valid manifest.
        """
        path = Path(path)
        if not path.is_file():
            raise IndexMismatchError(f"missing manifest {path}")
        try:
            d = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, OSError) as e:
            raise IndexMismatchError(f"corrupt manifest {path}: {e}") from None
        return cls.from_dict(d, where=str(path))


def file_record(path: str | os.PathLike, *, chunk: int = 1 << 20) -> dict:
    """``{"bytes": size, "sha256": hex}`` of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return {"bytes": os.path.getsize(path), "sha256": h.hexdigest()}
