"""coversearch report: its numbers agree with the shared evaluation code and
independent computations, the page embeds every figure, bad input is one line."""

import base64
import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from coversearch.cli import main
from coversearch.evaluate.retrieval import retrieval_metrics
from coversearch.index.bundle import write_bundle
from coversearch.report import report_numbers, write_report
from coversearch.report.numbers import kmeans_agreement, kmeans_grid, retrieval_section


def _clustered(n_works=8, versions=4, singles=10, dim=16, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_works + singles, dim))
    vec, lab = [], []
    for w in range(n_works):
        for _ in range(versions - (w % 2)):  # clique sizes 4 and 3
            vec.append(centres[w] + noise * rng.normal(size=dim))
            lab.append(f"W_{w}")
    for s in range(singles):
        vec.append(centres[n_works + s] + noise * rng.normal(size=dim))
        lab.append(f"W_s{s}")
    v = np.array(vec, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), np.array(lab)


@pytest.fixture
def index(tmp_path):
    v, lab = _clustered()
    idx = tmp_path / "idx"
    cols = {"perf_id": [f"P_{i}" for i in range(len(lab))], "work_id": lab.tolist()}
    write_bundle(idx, v, cols, manifest_fields={"model_hash": "feedfacefeedface", "feature": "hpcp",
                                                "source": "generated"})
    return idx, v, lab


def test_retrieval_section_matches_evaluate(index):
    _, v, lab = index
    sec = retrieval_section(v, lab)
    ref = retrieval_metrics(v, lab, per_query=True)
    assert sec["metrics"]["map"] == pytest.approx(ref["map"])
    pq = ref["per_query"]
    valid = pq["n_rel"] > 0
    # the histogram counts every query once, and MAP by size averages back to MAP
    assert sum(b["count"] for b in sec["rank_histogram"]) == valid.sum()
    rows = sec["map_by_clique_size"]
    assert [r["size"] for r in rows] == [3, 4]
    total = sum(r["map"] * r["n_queries"] for r in rows) / sum(r["n_queries"] for r in rows)
    assert total == pytest.approx(ref["map"])
    # per-work table: worst first, each work's AP = mean of its queries' AP
    aps = [w["ap"] for w in sec["works_worst"]]
    assert aps == sorted(aps)
    w0 = sec["works_worst"][0]["work_id"]
    assert sec["works_worst"][0]["ap"] == pytest.approx(np.mean(pq["ap"][lab == w0]))


def test_kmeans_perfect_and_random():
    # well separated clusters: k = number of works recovers them exactly
    v, lab = _clustered(noise=0.01, singles=0)
    k = kmeans_agreement(v, lab, ks=[8])
    assert k["rows"][0]["ari"] == pytest.approx(1.0) and k["rows"][0]["nmi"] == pytest.approx(1.0)
    # labels unrelated to the vectors: ARI near 0
    rng = np.random.default_rng(1)
    k = kmeans_agreement(rng.normal(size=(200, 8)), np.repeat(np.arange(20), 10), ks=[20])
    assert abs(k["rows"][0]["ari"]) < 0.05
    assert kmeans_grid(1000, 100) == [2, 4, 8, 16, 32, 64, 100, 128, 256]


def test_report_page_and_json(index, tmp_path):
    idx, v, lab = index
    js = tmp_path / "out" / "numbers.json"
    res = write_report(idx, tmp_path / "out", json_path=js)
    page = (tmp_path / "out" / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) >= 4  # rank histogram, MAP by size, PCA map, K-means (no training record here)
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page and "http" not in page.split("</style>")[1].split("<code>")[0]
    numbers = json.loads(js.read_text())
    assert numbers["retrieval"]["metrics"]["map"] == pytest.approx(res["numbers"]["retrieval"]["metrics"]["map"])
    assert "no training record" in numbers["training_note"]
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_report_uses_a_model_record(index, tmp_path):
    idx, _, _ = index
    rec = {"model_hash": "feedfacefeedface", "history": [{"epoch": 1, "loss": 2.0, "val_map": 0.1},
                                                        {"epoch": 2, "loss": 1.5, "val_map": 0.2}],
           "best": {"epoch": 2, "val_map": 0.2}}
    (tmp_path / "m.json").write_text(json.dumps(rec))
    n = report_numbers(idx, model=tmp_path / "m.pt", kmeans=False)
    assert n["training"]["val_map"] == [0.1, 0.2]
    (tmp_path / "other.json").write_text(json.dumps(rec | {"model_hash": "0000"}))
    r = CliRunner().invoke(main, ["report", "--index-dir", str(idx), "--model", str(tmp_path / "other.pt"),
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 5 and r.stderr.startswith("Error: ") and "0000" in r.stderr


def test_report_cli(index, tmp_path):
    idx, _, _ = index
    r = CliRunner().invoke(main, ["report", "--index-dir", str(idx), "--out", str(tmp_path / "o"),
                                  "--json", str(tmp_path / "o.json"), "--no-kmeans"])
    assert r.exit_code == 0, r.output
    assert "MAP" in r.output and (tmp_path / "o" / "report.html").is_file()
    r = CliRunner().invoke(main, ["report", "--index-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 4 and len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr
    assert not (tmp_path / "o2").exists()


def test_report_refuses_index_without_versions(tmp_path):
    v = np.eye(4, dtype=np.float32)
    write_bundle(tmp_path / "i", v, {"perf_id": ["a", "b", "c", "d"], "work_id": ["1", "2", "3", "4"]})
    with pytest.raises(Exception, match="two versions"):
        report_numbers(tmp_path / "i")


def test_report_renders_in_headless_chromium(index, tmp_path):
    """A real browser: every figure decodes and displays, the console stays clean."""
    import shutil
    import sys
    from pathlib import Path

    pytest.importorskip("selenium")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from report_browser import check_page

    idx, _, _ = index
    write_report(idx, tmp_path / "o", kmeans=False)
    page = (tmp_path / "o" / "report.html").read_text()
    r = check_page(tmp_path / "o" / "report.html", tmp_path / "shot.png")
    assert r["images"] == page.count("<img") >= 3
    assert r["broken"] == [] and r["errors"] == []
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
    # a broken figure is caught: the same page with one image's data cut short
    bad = tmp_path / "bad.html"
    bad.write_text(page.replace("base64,iVBOR", "base64,AAAA", 1))
    assert len(check_page(bad)["broken"]) == 1


def test_report_pair_auc_agrees_with_scikit_learn(index):
    """The report's pair AUC and threshold, checked against scikit-learn on the same pairs."""
    from sklearn.metrics import roc_auc_score

    from coversearch.evaluate.pairs import pair_distances, sample_pairs
    from coversearch.report.numbers import pairs_section

    _, v, lab = index
    sec = pairs_section(v, lab, seed=0)
    i, j, same = sample_pairs(lab, seed=0)
    d = pair_distances(v, i, j)
    assert sec["n_pairs"] == len(d) and sec["n_in_work"] == same.sum() == len(d) // 2
    assert sec["auc"] == pytest.approx(roc_auc_score(same, -d))
    # distances from the vectors, not from a cached or shuffled copy: break the labels, AUC drops to chance
    rng = np.random.default_rng(0)
    assert abs(pairs_section(v, rng.permutation(lab), seed=0)["auc"] - 0.5) < 0.2
    t = sec["threshold"]
    assert 0 <= t["far"] <= 1 and 0 <= t["frr"] <= 1 and t["accuracy"] > 0.8  # well separated clusters
    mt = pairs_section(v, lab, seed=0, model_threshold={"distance": 2.5})["model_threshold"]
    assert mt["far"] == 1.0 and mt["frr"] == 0.0  # everything is within distance 2.5: all accepted
    assert sum(sec["distances"]["in_work"]) * (sec["distances"]["edges"][1] - sec["distances"]["edges"][0]) == pytest.approx(1.0)


def test_report_recall_at_k_is_evaluates(index):
    from coversearch.evaluate.retrieval import recall_at_k

    _, v, lab = index
    assert retrieval_section(v, lab)["recall_at_k"] == recall_at_k(v, lab)


def test_report_shows_the_threshold_compare_uses(tmp_path):
    """The shipped encoder's calibration appears on the page and in the JSON when it built the index;
    another model's index gets a note; a corrupt calibration beside --model is one line."""
    from click.testing import CliRunner

    from coversearch.compare import load_calibration, model_file_and_hash

    path, shipped_hash = model_file_and_hash(None)
    cal = load_calibration(path, shipped_hash)
    v, lab = _clustered()
    idx = tmp_path / "idx"
    write_bundle(idx, v, {"perf_id": [f"P_{i}" for i in range(len(lab))], "work_id": lab.tolist()},
                 manifest_fields={"model_hash": shipped_hash, "feature": "hpcp", "source": "generated"})
    js = tmp_path / "n.json"
    write_report(idx, tmp_path / "o", json_path=js, kmeans=False)
    c = json.loads(js.read_text())["compare_threshold"]
    assert c["fused_threshold"] == pytest.approx(cal.threshold)
    assert c["cosine_distance_threshold"] == pytest.approx(cal.cosine_threshold)
    test = next(r for r in c["rates"] if r["score"] == "fused" and r["pairs"] == "held-out works")
    assert test["accuracy"] == pytest.approx(cal.record["fused"]["test"]["accuracy"])
    assert c["seed"] == cal.record["seed"] and c["split"]["calibration_works"] == cal.record["split"]["calibration_works"]
    # its cosine half is scored on this index's pairs (the page's dot on the ROC)
    mt = json.loads(js.read_text())["pairs"]["model_threshold"]
    assert mt["distance"] == pytest.approx(cal.cosine_threshold)
    page = (tmp_path / "o" / "report.html").read_text()
    panel = page.split('id="compare-threshold"')[1].split("</div>")[0]
    assert f"{cal.threshold:.4f}" in panel and f"{cal.cosine_threshold:.4f}" in panel and "held-out works" in panel
    # an index of another model: no threshold, and the page says why
    n = report_numbers(_other_index(tmp_path), kmeans=False)
    assert n["compare_threshold"] is None and "not the shipped encoder" in n["compare_threshold_note"]
    # --model whose calibration is corrupt: one line naming the file
    (tmp_path / "m.json").write_text(json.dumps({"model_hash": shipped_hash, "history": []}))
    (tmp_path / "m.calibration.json").write_text("{not json")
    r = CliRunner().invoke(main, ["report", "--index-dir", str(idx), "--model", str(tmp_path / "m.pt"),
                                  "--out", str(tmp_path / "o3"), "--no-kmeans"])
    assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1 and "m.calibration.json" in r.stderr


def _other_index(tmp_path):
    v, lab = _clustered(seed=1)
    idx = tmp_path / "other"
    write_bundle(idx, v, {"perf_id": [f"P_{i}" for i in range(len(lab))], "work_id": lab.tolist()},
                 manifest_fields={"model_hash": "0123456789abcdef", "feature": "hpcp", "source": "generated"})
    return idx
