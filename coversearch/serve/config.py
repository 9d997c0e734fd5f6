"""The server's settings: one frozen dataclass, mapped 1:1 to ``coversearch serve`` options."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from coversearch.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``coversearch serve``.

    Attributes:
        index_dir: the index folder served (reloaded when ``build-index`` replaces it).
        host: interface to bind; 127.0.0.1 (this machine only) unless told otherwise.
        port: TCP port.
        workers: heavy requests (uploads, re-rank) analysed at the same time.
        queue: heavy requests that may wait for a worker; beyond, 503 + Retry-After.
        max_upload_mb: largest accepted upload (413 above).
        model: encoder for uploaded files; None = the shipped one (must match the index).
        watch_seconds: how often the index folder is checked for a new build (0 = only POST /api/reload).
        max_k: largest ``k`` a client may ask for.
        threads: torch threads per heavy job.
        access_log: log every request (uvicorn's access log).
        processes: server processes sharing the port (uvicorn workers); each
            loads its own copy of the index and has its own heavy pool.
        milvus_uri: for an index whose vectors are in Milvus (``build-index --store milvus``),
            reach its collection at this URI instead of the one its manifest records.
    """

    index_dir: str = "indexes/default"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    queue: int = 4
    max_upload_mb: float = 100.0
    model: str | None = None
    watch_seconds: float = 2.0
    max_k: int = 100
    threads: int = 1
    access_log: bool = False
    processes: int = 1
    milvus_uri: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.workers >= 1, f"--workers must be >= 1, got {self.workers}"),
            (self.queue >= 0, f"--queue must be >= 0, got {self.queue}"),
            (self.max_upload_mb > 0, f"--max-upload-mb must be > 0, got {self.max_upload_mb}"),
            (0 <= self.port <= 65535, f"--port must be in 0..65535, got {self.port}"),
            (self.watch_seconds >= 0, f"--watch-seconds must be >= 0, got {self.watch_seconds}"),
            (self.max_k >= 1, f"--max-k must be >= 1, got {self.max_k}"),
            (self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
            (self.processes >= 1, f"--processes must be >= 1, got {self.processes}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        return cls(**json.loads(text))
