"""Compute a report's numbers from an index folder and write the page.

:func:`report_numbers` gathers every figure's numbers (JSON-able);
:func:`write_report` renders them into one self-contained HTML file and,
optionally, writes the same numbers as JSON. Both files are written
atomically (temporary name, then ``os.replace``).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

from coversearch._io import write_bytes_atomic, write_json_atomic
from coversearch.errors import ConfigError, IndexMismatchError
from coversearch.index.bundle import load_bundle
from coversearch.report import numbers as nb

__all__ = ["report_numbers", "write_report", "find_record", "find_calibration"]


def _shipped_record() -> dict:
    p = Path(str(resources.files("coversearch") / "resources" / "encoder.json"))
    return json.loads(p.read_text()) if p.is_file() else {}


def find_record(model_hash: str, model: str | Path | None = None) -> tuple[dict | None, str]:
    """The training record of the model that built an index.

    Looks at ``model`` (a ``.pt`` or its ``.json`` record) when given, else at
    the shipped encoder's record; a record is used only if its ``model_hash``
    matches the index's.

    Returns:
        (record or None, a note saying where it came from or why there is none).

    Raises:
        ConfigError: ``model`` given but it has no readable record, or the
            record is of another model than the index's.
    """
    if model is not None:
        p = Path(model).with_suffix(".json")
        if not p.is_file():
            raise ConfigError(f"--model {model}: no training record {p} beside it")
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{p}: unreadable training record ({e})") from None
        if rec.get("model_hash") != model_hash:
            raise ConfigError(f"{p}: record of model {rec.get('model_hash')}, but the index was built by {model_hash}")
        return rec, f"record {p}"
    rec = _shipped_record()
    if rec.get("model_hash") == model_hash:
        return rec, "the shipped encoder's record"
    return None, (f"no training record for model {model_hash} (not the shipped encoder); "
                  "pass --model PATH.pt to show its training curves")


def find_calibration(model_hash: str, model: str | Path | None = None) -> tuple[dict | None, str]:
    """The decision rule ``coversearch compare`` uses for the index's model, for the page.

    Looks beside ``model`` (``NAME.calibration.json``) when given, else at the
    shipped encoder's calibration; used only if it was made for the index's
    model.

    Returns:
        (section or None, a note saying where it came from or why there is
        none). The section holds the fused-score threshold ``compare``
        decides on, the cosine-distance threshold it reports beside it, how
        they were calibrated (data, works, pairs, seed, criterion) and the
        stored accuracy / F1 / error rates of each on its calibration pairs,
        held-out works and held-out ``wide`` variation.

    Raises:
        ConfigError: ``model`` given and its calibration file is corrupt or
            was made for another model than the index's.
    """
    from coversearch.compare import calibration_path, load_calibration, shipped_model_path

    path = Path(model) if model is not None else shipped_model_path()
    if not calibration_path(path).is_file():
        where = f"beside {path}" if model is not None else "for the shipped encoder"
        return None, (f"no calibration {where} ({calibration_path(path).name} missing): `compare` has no "
                      "threshold for this model; make one with `coversearch calibrate --val-data DIR`")
    if model is None:  # the shipped encoder's, only if it built the index
        try:
            stored = json.loads(calibration_path(path).read_text()).get("model_hash")
        except (OSError, ValueError):
            stored = None
        if stored != model_hash:
            return None, (f"no calibration for model {model_hash} (not the shipped encoder); pass --model "
                          "PATH.pt to show the threshold `compare` uses with it")
    cal = load_calibration(path, model_hash)
    rec = cal.record
    val = rec.get("data", {}).get("validation", {})
    rows = []
    for score in ("fused", "cosine"):
        for key, name in (("calibration", "calibration pairs"), ("test", "held-out works"),
                          ("wide", "held-out 'wide' variation"),
                          ("test_nearest_other_work", "each held-out item vs its nearest other work")):
            r = rec.get(score, {}).get(key)
            if r:
                rows.append({"score": score, "pairs": name, "n_positive": r.get("n_positive"),
                             "n_negative": r.get("n_negative"),
                             **{k: r.get(k) for k in ("accuracy", "f1", "far", "frr", "auc")}})
    section = {
        "path": str(cal.path), "model_hash": cal.model_hash,
        "rule": (f"versions when (1-{cal.weight:g}) cos + {cal.weight:g} qmax[{cal.norm}] >= {cal.threshold:.4f}"),
        "fused_threshold": cal.threshold, "weight": cal.weight, "norm": cal.norm,
        "cosine_distance_threshold": cal.cosine_threshold,
        "criterion": rec.get("criterion"), "seed": rec.get("seed"), "created": rec.get("created"),
        "command": rec.get("command"), "data": val.get("description", val.get("path")),
        "split": rec.get("split", {}), "summary": cal.summary(), "rates": rows,
    }
    return section, f"calibration {cal.path}"


def report_numbers(index_dir: str | Path, *, model: str | Path | None = None, kmeans: bool = True,
                   map_works: int = 10, command: str = "") -> dict:
    """Every number the report shows, for an index whose work ids are known.

    Args:
        index_dir: an index folder built by ``coversearch build-index``.
        model: checkpoint (or its record) of the index's model, for the
            training curves and the calibration beside it; None = the shipped
            encoder's record and calibration if they match.
        kmeans: run the K-means sweep (the slowest part on large indexes).
        map_works: how many of the largest works the 2-D map colours.
        command: the command line that made the report (shown on the page).

    Returns:
        dict with ``source``, ``pairs``, ``retrieval``, ``embedding_map``, ``kmeans``,
        ``training`` (or ``training_note``), ``compare_threshold`` (the
        threshold ``coversearch compare`` uses, :func:`find_calibration`; None
        when the model has none) and ``compare_threshold_note``, ``seconds``,
        ``created``.

    Raises:
        IndexMismatchError: missing or inconsistent index, or no work has two
            versions in it (nothing to evaluate).
    """
    t0 = time.perf_counter()
    bundle = load_bundle(index_dir, load_index=False)
    labels = np.array(bundle.items.column("work_id").to_pylist())
    vectors = np.asarray(bundle.vectors, np.float32)
    _, counts = np.unique(labels, return_counts=True)
    if (labels == "").any() or not (counts >= 2).any():
        raise IndexMismatchError(f"{index_dir}: the report needs work ids, and at least one work with two "
                                 "versions in the index")
    man = bundle.manifest
    calibration, cal_note = find_calibration(man.model_hash, model)
    model_threshold = None
    if calibration:  # the cosine half of compare's rule, scored on this index's pairs
        model_threshold = {"distance": calibration["cosine_distance_threshold"],
                           "source": f"cosine-distance threshold of {calibration['path']}"}
    out = {
        "source": {"index_dir": str(index_dir), "count": int(man.count), "dim": int(man.dim),
                   "index_kind": man.index_kind, "model_hash": man.model_hash, "feature": man.feature,
                   "data": man.source},
        "pairs": nb.pairs_section(vectors, labels, model_threshold=model_threshold),
        "compare_threshold": calibration,
        "compare_threshold_note": cal_note,
        "retrieval": nb.retrieval_section(vectors, labels),
        "embedding_map": nb.embedding_map(vectors, labels, n_works=map_works),
    }
    if kmeans:
        out["kmeans"] = nb.kmeans_agreement(vectors, labels)
    record, note = find_record(man.model_hash, model)
    out["training"] = nb.training_section(record)
    out["training_note"] = note
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["created"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out["command"] = command or f"coversearch report --index-dir {index_dir}"
    return out


def write_report(index_dir: str | Path, out_dir: str | Path, *, json_path: str | Path | None = None,
                 model: str | Path | None = None, kmeans: bool = True, command: str = "") -> dict:
    """Compute the numbers, write ``out_dir/report.html`` (and ``json_path``).

    Returns:
        ``{"html": path, "json": path or None, "seconds": float, "numbers": dict}``.
    """
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"coversearch report needs matplotlib and scikit-learn ({e}): "
                          "pip install 'coversearch[plot]'") from None
    from coversearch.report.render import render_html

    t0 = time.perf_counter()
    numbers = report_numbers(index_dir, model=model, kmeans=kmeans, command=command)
    page = render_html(numbers)
    numbers["seconds"] = round(time.perf_counter() - t0, 2)
    html_path = Path(out_dir) / "report.html"
    write_bytes_atomic(html_path, page.encode("utf-8"))
    if json_path:
        write_json_atomic(json_path, numbers)
    return {"html": str(html_path), "json": str(json_path) if json_path else None,
            "seconds": numbers["seconds"], "numbers": numbers}
