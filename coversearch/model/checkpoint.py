"""Save and load an encoder with its full config and training record.

A checkpoint is ``NAME.pt`` (torch: state dict + configs + history) with a
readable ``NAME.json`` record beside it. The model hash is the sha256 of the
``.pt`` bytes, so an index can tell which model built it without torch.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path

import torch

from coversearch._io import file_sha256, write_bytes_atomic, write_json_atomic
from coversearch.errors import ConfigError
from coversearch.model.config import EncoderConfig
from coversearch.model.encoder import Encoder


def default_model_path() -> Path:
    """The encoder shipped in the package (``coversearch/resources/encoder.pt``)."""
    return Path(str(resources.files("coversearch") / "resources" / "encoder.pt"))


def model_hash(path: str | Path) -> str:
    """Short content hash of a checkpoint file (16 hex characters)."""
    return file_sha256(path, 16)


def plain(obj):
    """``obj`` as JSON-able builtins (numpy scalars and arrays to Python
    numbers and lists, tuples to lists): what ``torch.load(weights_only=True)``
    accepts besides tensors."""
    def default(x):
        if hasattr(x, "tolist"):
            return x.tolist()
        raise TypeError(f"cannot store {type(x).__name__} in a checkpoint record")

    return json.loads(json.dumps(obj, default=default))


def save_checkpoint(path: str | Path, model: Encoder, record: dict) -> str:
    """Write ``path`` (.pt) and ``path.with_suffix('.json')`` atomically.

    Args:
        path: destination ``.pt``.
        model: the encoder (its config is stored).
        record: train config, history, best epoch and metrics, data source.

    Returns:
        The model hash.
    """
    path = Path(path)
    record = plain(record)
    buf = io.BytesIO()
    torch.save({"encoder_config": plain(model.config.to_dict()), "state_dict": model.state_dict(), "record": record}, buf)
    write_bytes_atomic(path, buf.getvalue())
    h = model_hash(path)
    write_json_atomic(path.with_suffix(".json"), {"model_hash": h, "encoder_config": model.config.to_dict(), **record})
    return h


def load_checkpoint(path: str | Path | None = None) -> tuple[Encoder, dict]:
    """Rebuild an encoder from its stored config and weights, in eval mode.

    Returns:
        (model, info) where info has ``model_hash``, ``path``, ``record``.

    Raises:
        ConfigError: missing or unreadable checkpoint.
    """
    path = Path(path) if path else default_model_path()
    if not path.is_file():
        raise ConfigError(f"model not found: {path} (train one with `coversearch train`)")
    try:
        # weights_only: a model file from elsewhere must not be able to run code
        blob = torch.load(path, map_location="cpu", weights_only=True)
        config = EncoderConfig.from_dict(blob["encoder_config"])
        model = Encoder(config)
        model.load_state_dict(blob["state_dict"])
    except Exception as e:  # torch raises many types for a bad file
        raise ConfigError(f"{path}: not a coversearch checkpoint ({type(e).__name__}: {str(e)[:120]})") from None
    model.eval()
    return model, {"model_hash": model_hash(path), "path": str(path), "record": blob.get("record", {}), "config": config}


def read_record(path: str | Path) -> dict:
    """The JSON record beside a checkpoint (no torch needed)."""
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else {}
