"""End to end on a small synthetic set: synth -> short training -> build-index ->
query -> evaluate, all through the CLI, with retrieval far above chance on
works the encoder never trained on.

The short training fine-tunes the shipped encoder (two epochs on 60 new
works): training an encoder from scratch to a useful level takes tens of CPU
minutes, which belongs in scripts/train_shipped.sh, not in the test suite.
"""

import json

import pytest
from click.testing import CliRunner

from coversearch.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    runner = CliRunner()
    common = ["--hop", "4096", "--features", "hpcp", "--layout", "per-feature", "--max-seconds", "60", "--quiet", "--jobs", "2"]
    r = runner.invoke(main, ["synth", str(base / "train"), "--profile", "train", "--n-works", "60", "--seed", "11", *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["synth", str(base / "test"), "--profile", "demo", "--seed", "12", *common])
    assert r.exit_code == 0, r.output
    return base


def test_synth_train_index_query_evaluate(sets):
    runner = CliRunner()
    model = sets / "m.pt"
    from coversearch.model.checkpoint import default_model_path, model_hash

    shipped = default_model_path()
    r = runner.invoke(main, ["train", "--data", str(sets / "train"), "--out", str(model), "--epochs", "2",
                             "--works-per-batch", "8", "--quiet", "--jobs", "1", "--init", str(shipped)])
    assert r.exit_code == 0, r.output
    record = json.loads(model.with_suffix(".json").read_text())
    assert len(record["history"]) == 2 and record["n_val_works"] >= 2
    assert record["init_from"] == model_hash(shipped)
    assert record["encoder_config"]["dim"] == 128 and record["train_config"]["epochs"] == 2

    idx = sets / "idx"
    r = runner.invoke(main, ["build-index", "--data", str(sets / "test"), "--model", str(model),
                             "--index-dir", str(idx), "--quiet", "--jobs", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["query", "P_22", "--k", "10", "--index-dir", str(idx), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)["results"]
    assert len(res) == 10 and res[0]["distance"] <= res[-1]["distance"]

    out = sets / "metrics.json"
    r = runner.invoke(main, ["evaluate", "--index-dir", str(idx), "--json", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    m = json.loads(out.read_text())
    # demo structure: 10 works x 13 versions + 30 singletons among 160 items;
    # a random ranking gives MAP about 0.1 and MR1 about 12
    assert m["n_items"] == 160 and m["n_queries"] == 130
    assert m["map"] > 0.4, m
    assert m["mr1"] < 4, m


def test_generated_set_readable_by_reader(sets):
    from coversearch.data.layout import find_performances
    from coversearch.data.reader import load_chroma

    entries = find_performances(sets / "test", "hpcp")
    assert len(entries) == 160 and any(e.perf_id == "P_22" for e in entries)
    c = load_chroma(entries[0].path, "hpcp")
    assert c.hop == 4096 and c.frames.shape[1] == 12
