"""`coversearch compare` and `coversearch calibrate`: a real (tiny) calibration,
then ids, h5 files and every bad input through the CLI."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from coversearch import api
from coversearch.cli import main
from coversearch.compare import Calibration, calibration_path, load_calibration
from coversearch.errors import ConfigError
from coversearch.model.checkpoint import save_checkpoint
from coversearch.model.config import EncoderConfig
from coversearch.model.encoder import Encoder
from tests.conftest import write_versions_root


def _model(path, dim=32, seed=0):
    torch.manual_seed(seed)
    save_checkpoint(path, Encoder(EncoderConfig(dim=dim, channels=8, hidden=16)), {"history": []})
    return path


def _versions_root(root, seed, n_works=6, n_versions=3, first_work=1):
    """Works W_first_work.. whose versions are P_{w * 10 + v + 1} (W_1: P_11..P_13)."""
    return write_versions_root(root, seed, n_works=n_works, n_versions=n_versions, first_work=first_work, id_offset=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    root = _versions_root(tmp / "data", seed=0)
    val = _versions_root(tmp / "val", seed=1, n_works=6, first_work=101)
    wide = _versions_root(tmp / "wide", seed=2, n_works=3, first_work=201)
    model = _model(tmp / "m.pt")
    idx = tmp / "idx"
    api.build_index(root, model=model, index_dir=idx, jobs=1, progress=False, log=lambda *_: None)
    rec = api.calibrate(val, model=model, wide_data=wide, seed=0, jobs=1, progress=False, log=lambda *_: None)
    return {"tmp": tmp, "root": root, "model": model, "idx": idx, "rec": rec}


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(r, code, *needles):
    assert r.exit_code == code, (r.exit_code, r.output)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_calibration_record_is_complete(setup):
    rec, model = setup["rec"], setup["model"]
    path = calibration_path(model)
    assert path.name == "m.calibration.json" and path.is_file()
    cal = load_calibration(model)
    assert cal.model_hash == rec["model_hash"]
    f = rec["fused"]
    # 6 works x 3 versions: 4 calibration works -> 12 version pairs, as many cross-work pairs
    assert rec["split"]["calibration_works"] == 4 and rec["split"]["test_works"] == 2
    assert f["calibration"]["n_positive"] == 12 and f["calibration"]["n_negative"] == 12
    assert f["test"]["n_positive"] == 6 and f["wide"]["n_positive"] == 9
    assert f["test_nearest_other_work"]["n_negative"] == 6
    for part in ("calibration", "test", "wide"):
        assert 0.0 <= f[part]["far"] <= 1.0 and 0.0 <= f[part]["frr"] <= 1.0
    assert rec["cosine"]["threshold"] > 0
    assert "works" in cal.summary() and "FAR" in cal.summary()


def test_compare_two_ids(setup):
    idx, model = setup["idx"], setup["model"]
    r = _run("compare", "P_11", "P_12", "--index-dir", idx, "--model", model)
    assert r.exit_code == 0, r.output
    assert "verdict: " in r.output and "confidence" in r.output and "known works: the same" in r.output
    r = _run("compare", "P_11", "P_21", "--index-dir", idx, "--model", model, "--json")
    out = json.loads(r.output)
    from coversearch.index.bundle import load_bundle

    b = load_bundle(idx, load_index=False)
    cos = float(np.dot(b.vector_of("P_11"), b.vector_of("P_21")))
    assert out["cosine_distance"] == pytest.approx(1 - cos, abs=1e-6)
    cal = Calibration.from_record(setup["rec"], calibration_path(model))
    assert out["versions"] == (out["fused"] >= cal.threshold)
    assert 0.5 <= out["confidence"] <= 1.0
    assert out["fused"] == pytest.approx((1 - cal.weight) * cos + cal.weight * out["qmax_norm"])
    # symmetric
    back = api.compare("P_21", "P_11", index_dir=idx, model=model)
    assert back["fused"] == pytest.approx(out["fused"]) and back["versions"] == out["versions"]


def test_compare_id_with_h5(setup):
    idx, model, root = setup["idx"], setup["model"], setup["root"]
    f = next(root.rglob("P_11_hpcp.h5"))
    out = api.compare("P_11", str(f), index_dir=idx, model=model)
    assert out["b"]["kind"] == "h5" and out["b"]["perf_id"] == "P_11"
    assert out["cosine_distance"] < 1e-5  # the same recording, embedded on the fly
    g = next(root.rglob("P_12_hpcp.h5"))
    r = _run("compare", f, g, "--model", model, "--index-dir", setup["tmp"] / "no-index")
    assert r.exit_code == 0, r.output  # two files need no index
    assert "P_11 of work W_1" in r.output


def test_compare_bad_inputs(setup, tmp_path):
    idx, model = setup["idx"], setup["model"]
    _one_line_error(_run("compare", "P_11", "P_99999", "--index-dir", idx, "--model", model), 3, "P_99999")
    _one_line_error(_run("compare", "P_11", tmp_path / "nope.h5", "--index-dir", idx, "--model", model), 2, "nope.h5")
    (tmp_path / "notes.txt").write_text("x")
    _one_line_error(_run("compare", "P_11", tmp_path / "notes.txt", "--index-dir", idx, "--model", model), 2, "notes.txt")
    _one_line_error(_run("compare", "P_11", "P_12", "--index-dir", tmp_path / "none", "--model", model), 4, "build-index")
    # a model other than the index's: its own calibration exists, the index does not match
    other = _model(tmp_path / "other.pt", seed=1)
    shutil.copy(calibration_path(model), calibration_path(other))
    rec = json.loads(calibration_path(other).read_text())
    from coversearch.compare import model_file_and_hash

    rec["model_hash"] = model_file_and_hash(other)[1]
    calibration_path(other).write_text(json.dumps(rec))
    _one_line_error(_run("compare", "P_11", "P_12", "--index-dir", idx, "--model", other), 4, "built by model")


def test_calibration_missing_corrupt_or_foreign(setup, tmp_path):
    idx = setup["idx"]
    m2 = tmp_path / "m2.pt"
    shutil.copy(setup["model"], m2)  # same weights, no calibration beside it
    _one_line_error(_run("compare", "P_11", "P_12", "--index-dir", idx, "--model", m2), 5, "calibrat", "m2.calibration.json")
    calibration_path(m2).write_text("{not json")
    _one_line_error(_run("compare", "P_11", "P_12", "--index-dir", idx, "--model", m2), 5, "corrupt")
    rec = dict(setup["rec"])
    del rec["fused"]
    calibration_path(m2).write_text(json.dumps(rec))
    _one_line_error(_run("compare", "P_11", "P_12", "--index-dir", idx, "--model", m2), 5, "malformed")
    rec = dict(setup["rec"], model_hash="0123456789abcdef")
    calibration_path(m2).write_text(json.dumps(rec))
    with pytest.raises(ConfigError, match="0123456789abcdef"):
        load_calibration(m2, setup["rec"]["model_hash"])


def test_calibrate_records_the_rerank_defaults(setup):
    """A calibration run without --weight/--norm fits at today's RerankConfig and says so in the file."""
    from coversearch.rerank import RerankConfig

    rr = RerankConfig()
    assert setup["rec"]["score"] == {"weight": rr.weight, "norm": rr.norm, "align": rr.to_dict()["align"]}
    cal = load_calibration(setup["model"])
    assert (cal.weight, cal.norm, cal.align) == (rr.weight, rr.norm, rr.align)


def _file_pair(setup):
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare

    files = [next(setup["root"].rglob(f"{p}_hpcp.h5")) for p in ("P_11", "P_21")]
    seqs = []
    for f in files:
        c = load_chroma(f, "hpcp")
        seqs.append(prepare(c.frames, c.hop))
    return files, seqs


def test_calibration_fitted_at_weight_w_is_applied_at_w(setup, tmp_path):
    """`calibrate --weight 0.25 --norm min_len`: the file records them and `compare` fuses with them,
    not with the re-rank defaults (0.6, sqrt_prod)."""
    from coversearch.align import AlignConfig
    from coversearch.compare import pair_scores

    m3 = tmp_path / "m3.pt"
    shutil.copy(setup["model"], m3)  # same weights: the index still matches
    r = _run("calibrate", "--val-data", setup["tmp"] / "val", "--model", m3, "--weight", "0.25", "--norm", "min_len",
             "--jobs", "1", "--quiet")
    assert r.exit_code == 0, r.output
    assert "(1-0.25)cos + 0.25 qmax[min_len]" in r.output
    rec = json.loads(calibration_path(m3).read_text())
    assert rec["score"]["weight"] == 0.25 and rec["score"]["norm"] == "min_len"
    (fa, fb), (sa, sb) = _file_pair(setup)
    out = api.compare(str(fa), str(fb), model=m3)
    want = pair_scores(1.0 - out["cosine_distance"], sa, sb, weight=0.25, norm="min_len", align=AlignConfig())
    assert out["qmax"] == pytest.approx(want["qmax"]) and out["qmax_norm"] == pytest.approx(want["qmax_norm"])
    assert out["fused"] == pytest.approx(want["fused"], abs=1e-6)
    assert out["versions"] == (out["fused"] >= rec["fused"]["threshold"])
    # the default-fitted file next to the original model fuses at 0.6 / sqrt_prod: another number
    dflt = api.compare(str(fa), str(fb), model=setup["model"])
    assert dflt["qmax"] == pytest.approx(out["qmax"]) and dflt["fused"] != pytest.approx(out["fused"])


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_stored_weight_and_alignment_are_used_not_todays_defaults(setup, tmp_path, weight):
    """An (older) file fitted at weight w and another alignment keeps being applied exactly so."""
    m4 = tmp_path / "m4.pt"
    shutil.copy(setup["model"], m4)
    rec = json.loads(json.dumps(setup["rec"]))
    rec["score"]["weight"] = weight
    rec["score"]["align"] = dict(rec["score"]["align"], downsample=1, m=5)
    calibration_path(m4).write_text(json.dumps(rec))
    (fa, fb), (sa, sb) = _file_pair(setup)
    out = api.compare(str(fa), str(fb), model=m4)
    cos = 1.0 - out["cosine_distance"]
    assert out["fused"] == pytest.approx((1 - weight) * cos + weight * out["qmax_norm"], abs=1e-7)
    from coversearch.align import AlignConfig
    from coversearch.compare import pair_scores

    want = pair_scores(cos, sa, sb, weight=weight, norm=rec["score"]["norm"], align=AlignConfig(downsample=1, m=5))
    assert out["qmax"] == pytest.approx(want["qmax"])


def test_calibration_without_its_fusion_settings_is_refused(setup, tmp_path):
    m5 = tmp_path / "m5.pt"
    shutil.copy(setup["model"], m5)
    for change, needle in (({"align": None}, "score.align"), ({"weight": 1.5}, "weight"), ({"norm": "max"}, "norm")):
        rec = json.loads(json.dumps(setup["rec"]))
        rec["score"].update(change)
        if change.get("align", 0) is None:
            del rec["score"]["align"]
        calibration_path(m5).write_text(json.dumps(rec))
        with pytest.raises(ConfigError, match="malformed") as e:
            load_calibration(m5)
        assert needle in str(e.value)


def test_calibrate_bad_fusion_options(tmp_path):
    for args, option in ((["--weight", "1.5"], "--weight"), (["--weight", "nan"], "--weight"),
                         (["--norm", "max"], "--norm")):
        _one_line_error(_run("calibrate", "--val-data", tmp_path, *args), 5, option)


def test_shipped_calibration_is_fitted_at_the_rerank_defaults():
    """compare's verdict for the shipped encoder fuses as the product's re-rank does: if RerankConfig's
    defaults change, rerun `bash scripts/calibrate_shipped.sh` (README, compare section)."""
    from coversearch.compare import model_file_and_hash
    from coversearch.rerank import RerankConfig

    path, h = model_file_and_hash(None)
    cal = load_calibration(path, h)
    rr = RerankConfig()
    assert (cal.weight, cal.norm, cal.align) == (rr.weight, rr.norm, rr.align)


def test_help_says_how_it_was_calibrated():
    r = _run("compare", "--help")
    assert r.exit_code == 0
    assert "calibrat" in r.output.lower()


@pytest.mark.parametrize("args,option", [
    (["evaluate", "--max-queries", "0"], "--max-queries"),
    (["evaluate", "--max-queries", "-3"], "--max-queries"),
    (["evaluate", "--rerank", "--shortlist", "0"], "--shortlist"),
    (["evaluate", "--rerank", "--jobs", "0"], "--jobs"),
    (["query", "P_11", "--rerank", "--shortlist", "0"], "--shortlist"),
])
def test_zero_numeric_options_are_refused(setup, args, option):
    r = _run(*args, "--index-dir", setup["idx"])
    _one_line_error(r, 5, option)


def test_numeric_options_of_other_commands(tmp_path):
    for args, option in ((["synth", tmp_path / "s", "--n-works", "0"], "--n-works"),
                         (["synth", tmp_path / "s", "--max-seconds", "-1", "--n-works", "1"], "--max-seconds"),
                         (["synth", tmp_path / "s", "--seed", "-1", "--n-works", "1"], "--seed"),
                         (["build-index", "--data", tmp_path, "--jobs", "0"], "--jobs"),
                         (["train", "--data", tmp_path, "--epochs", "0"], "--epochs"),
                         (["train", "--data", tmp_path, "--lr", "0"], "--lr"),
                         (["train", "--data", tmp_path, "--works-per-batch", "1"], "--works-per-batch"),
                         (["calibrate", "--val-data", tmp_path, "--test-fraction", "1"], "--test-fraction")):
        _one_line_error(_run(*args), 5, option)
    assert not (tmp_path / "s").exists()  # a refused synth makes no folder


def test_skip_bad_quiet_lists_skipped_files_last(tmp_path):
    root = _versions_root(tmp_path / "d", seed=3, n_works=2)
    bad = next(root.rglob("P_12_hpcp.h5"))
    bad.write_bytes(bad.read_bytes()[:300])
    model = _model(tmp_path / "m.pt")
    r = _run("build-index", "--data", root, "--model", model, "--index-dir", tmp_path / "i", "--jobs", "1",
             "--skip-bad", "--quiet")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1].endswith("P_12_hpcp.h5")


def test_report_shows_this_models_calibration(setup, tmp_path):
    """`coversearch report --model M.pt` shows the threshold `compare` uses with M (calibrated above)."""
    cal = load_calibration(setup["model"])
    r = _run("report", "--index-dir", setup["idx"], "--model", setup["model"], "--out", tmp_path / "o",
             "--json", tmp_path / "n.json", "--no-kmeans")
    assert r.exit_code == 0, r.output
    c = json.loads((tmp_path / "n.json").read_text())["compare_threshold"]
    assert c["fused_threshold"] == pytest.approx(cal.threshold) and c["model_hash"] == cal.model_hash
    assert {r["pairs"] for r in c["rates"]} >= {"calibration pairs", "held-out works", "held-out 'wide' variation"}
    assert f"{cal.threshold:.4f}" in (tmp_path / "o" / "report.html").read_text()
