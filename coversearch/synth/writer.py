"""The Da-TACOS format writer now lives in ``coversearch.data.writer`` (the
generator and ``coversearch extract`` both write the format); re-exported here
for existing imports."""

from coversearch.data.writer import (chunk_shape, perf_paths, write_metadata, write_performance,  # noqa: F401
                                     write_performance_from_parts)

__all__ = ["write_performance", "write_performance_from_parts", "write_metadata", "perf_paths", "chunk_shape"]
