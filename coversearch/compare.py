"""Query-time verdict of ``coversearch compare A B``: are two performances versions?

Two numbers describe a pair, both as the retrieval pipeline computes them:
the cosine distance of the two embeddings (first stage) and the fused
score of the re-rank stage, ``(1 - w) * cosine + w * qmax_norm``
(:mod:`coversearch.rerank`, Serra09 alignment). The decision is a threshold
on the fused score, chosen on validation works and stored beside the model
as ``NAME.calibration.json`` (written offline by
:mod:`coversearch.calibrate`, which records the data, seed, number of pairs
and the error rates on held-out pairs). The confidence is a logistic
(Platt) curve fitted on the same validation pairs with its midpoint at the
threshold: the probability that the verdict is right when, a priori, the
pair is as likely to be versions as not.

Nothing here imports torch: comparing two indexed ids needs only the
index's vectors and its prepared cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from coversearch._io import file_sha256
from coversearch.align import AlignConfig
from coversearch.errors import ConfigError
from coversearch.evaluate.pairs import logistic
from coversearch.rerank import align_shortlist, check_norm, check_weight, fuse, normalise_qmax

CALIBRATION_SUFFIX = ".calibration.json"
CALIBRATION_FORMAT = 1


def shipped_model_path() -> Path:
    """The encoder shipped in the package (same file as ``model.checkpoint.default_model_path``, without torch)."""
    return Path(str(resources.files("coversearch") / "resources" / "encoder.pt"))


def model_file_and_hash(model: str | Path | None) -> tuple[Path, str]:
    """(path, 16-hex content hash) of a checkpoint, the shipped one by default.

    Raises:
        ConfigError: the file does not exist.
    """
    path = Path(model) if model else shipped_model_path()
    if not path.is_file():
        raise ConfigError(f"model not found: {path}")
    return path, file_sha256(path, 16)


def calibration_path(model_path: str | Path) -> Path:
    """``models/x.pt`` -> ``models/x.calibration.json`` (beside the weights)."""
    p = Path(model_path)
    return p.with_name(p.stem + CALIBRATION_SUFFIX)


@dataclass(frozen=True)
class Calibration:
    """A stored decision rule for one model.

    Attributes:
        path: the JSON file.
        model_hash: the model it was calibrated for.
        weight, norm, align: how the fused score is computed: the settings
            the threshold was fitted with (stored in the file's ``score``),
            whatever today's :class:`~coversearch.rerank.RerankConfig`
            defaults or an index's ``rerank.json`` say.
        threshold: decide "versions" when fused >= threshold.
        slope: logistic slope of the confidence around ``threshold``.
        cosine_threshold: cosine-distance threshold (embedding only; "versions"
            when distance <= it), reported beside the verdict.
        cosine_slope: its logistic slope (on -distance).
        record: the whole JSON (data, seed, pairs, error rates).
    """

    path: Path
    model_hash: str
    weight: float
    norm: str
    align: AlignConfig
    threshold: float
    slope: float
    cosine_threshold: float
    cosine_slope: float
    record: dict = field(repr=False, default_factory=dict)

    @classmethod
    def from_record(cls, rec: dict, path: Path) -> "Calibration":
        """Build from the JSON written by :mod:`coversearch.calibrate`.

        Raises:
            ConfigError: a field is missing or malformed.
        """
        try:
            if rec.get("format_version") != CALIBRATION_FORMAT:
                raise ValueError(f"format_version {rec.get('format_version')!r}, expected {CALIBRATION_FORMAT}")
            # The fusion settings the threshold was fitted with, all required: a
            # threshold is only meaningful at its own weight, norm and alignment,
            # whatever today's RerankConfig defaults are.
            sc = rec["score"]
            if not isinstance(sc.get("align"), dict):
                raise KeyError("score.align")
            out = cls(path=Path(path), model_hash=str(rec["model_hash"]), weight=check_weight(sc["weight"]),
                      norm=check_norm(str(sc["norm"])), align=AlignConfig(**sc["align"]),
                      threshold=float(rec["fused"]["threshold"]), slope=float(rec["fused"]["slope"]),
                      cosine_threshold=float(rec["cosine"]["threshold"]),
                      cosine_slope=float(rec["cosine"]["slope"]), record=rec)
        except (KeyError, TypeError, ValueError, ConfigError) as e:
            raise ConfigError(f"{path}: malformed calibration ({type(e).__name__}: {e}); "
                              "regenerate it with `coversearch calibrate`") from None
        if not all(np.isfinite([out.threshold, out.slope, out.cosine_threshold, out.cosine_slope])):
            raise ConfigError(f"{path}: malformed calibration (non-finite threshold or slope)")
        return out

    def summary(self) -> str:
        """One paragraph: how it was calibrated and its held-out error rates."""
        r = self.record
        val = r.get("data", {}).get("validation", {})
        sp = r.get("split", {})
        f = r.get("fused", {})
        parts = [
            f"Calibrated for model {self.model_hash} on {val.get('description', 'validation works')} "
            f"({sp.get('calibration_works', '?')} works, {_npairs(f.get('calibration'))} pairs, seed {r.get('seed', '?')}; "
            f"criterion {r.get('criterion', '?')}): versions when the fused score "
            f"(1-{self.weight:g})cos + {self.weight:g} qmax[{self.norm}] >= {self.threshold:.4f}."
        ]
        for key, name in (("test", "held-out works"), ("wide", "held-out 'wide' variation")):
            t = f.get(key)
            if t:
                parts.append(f"On {name} ({_npairs(t)} pairs): FAR {t['far']:.1%}, FRR {t['frr']:.1%}, "
                             f"accuracy {t['accuracy']:.1%}.")
        hard = f.get("test_nearest_other_work")
        if hard:
            parts.append(f"But against each held-out item's nearest other-work neighbour ({hard['n_negative']} "
                         f"look-alike pairs) FAR is {hard['far']:.1%}: 'versions' means 'as close as versions "
                         "usually are', not proof.")
        return " ".join(parts)


def _npairs(rates: dict | None) -> str:
    if not rates:
        return "?"
    return f"{rates.get('n_positive', '?')}+{rates.get('n_negative', '?')}"


def load_calibration(model_path: str | Path, model_hash: str | None = None) -> Calibration:
    """The calibration stored beside a model.

    Args:
        model_path: the checkpoint (``.pt``); the JSON is ``NAME.calibration.json``.
        model_hash: if given, must equal the hash the calibration was made for.

    Raises:
        ConfigError: missing, unreadable, malformed, or made for another model.
    """
    p = calibration_path(model_path)
    if not p.is_file():
        raise ConfigError(f"no calibration for model {model_path}: {p} is missing; "
                          "make it with `coversearch calibrate --val-data DIR`")
    try:
        rec = json.loads(p.read_text())
        if not isinstance(rec, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{p}: corrupt calibration file ({type(e).__name__}: {str(e)[:80]}); "
                          "regenerate it with `coversearch calibrate`") from None
    cal = Calibration.from_record(rec, p)
    if model_hash is not None and cal.model_hash != model_hash:
        raise ConfigError(f"{p} was calibrated for model {cal.model_hash}, not {model_hash}; "
                          "regenerate it with `coversearch calibrate`")
    return cal


def shipped_calibration_summary() -> str:
    """The shipped encoder's calibration in one paragraph (for ``--help``), or why there is none."""
    try:
        path, h = model_file_and_hash(None)
        return load_calibration(path, h).summary()
    except ConfigError as e:
        return f"The shipped encoder has no usable calibration ({e})."


def pair_scores(cosine: float, seq_a: np.ndarray, seq_b: np.ndarray, *, weight: float, norm: str,
                align: AlignConfig = AlignConfig()) -> dict:
    """The two numbers of a pair, as the re-rank stage computes them.

    Symmetric: the OTI, the mutual-neighbour recurrence plot and the Qmax
    recursion all treat the two sides alike (tested), so one alignment
    suffices and ``compare A B == compare B A``.

    Args:
        cosine: cosine similarity of the two embeddings.
        seq_a, seq_b: (T, 12) float32 prepared sequences.
        weight, norm, align: fusion settings (a :class:`Calibration`'s).

    Returns:
        {"cosine_distance", "qmax", "qmax_norm", "fused"} floats.
    """
    raw_ab, t_a, t_b = align_shortlist(seq_a, [seq_b], config=align)
    raw = float(raw_ab[0])
    qn = float(normalise_qmax(np.array([raw]), t_a, t_b, norm)[0])
    fused = float(fuse(np.array([cosine]), np.array([qn]), weight)[0])
    return {"cosine_distance": float(1.0 - cosine), "qmax": raw, "qmax_norm": qn, "fused": fused}


def verdict(scores: dict, cal: Calibration) -> dict:
    """Decide from the fused score; the cosine-only decision is given beside it.

    Returns:
        {"versions": bool, "confidence": float in [0.5, 1], "threshold",
        "cosine_only": {"versions", "confidence", "threshold"}}.
    """
    fused = scores["fused"]
    yes = bool(fused >= cal.threshold)
    p = float(logistic(np.array([fused - cal.threshold]), cal.slope, 0.0)[0])
    d = scores["cosine_distance"]
    yes_c = bool(d <= cal.cosine_threshold)
    pc = float(logistic(np.array([cal.cosine_threshold - d]), cal.cosine_slope, 0.0)[0])
    return {
        "versions": yes, "confidence": p if yes else 1.0 - p, "threshold": cal.threshold,
        "cosine_only": {"versions": yes_c, "confidence": pc if yes_c else 1.0 - pc, "threshold": cal.cosine_threshold},
    }
