"""Scratch lab for adaptation: mining rules' precision and fine-tuning variants on a dev index."""
import sys, json, time, copy
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from coversearch import api
from coversearch.adapt import FinetuneConfig, MineConfig, pair_quality, finetune
from coversearch.adapt.mine import propose, normalise, select, knn
from coversearch.evaluate.retrieval import retrieval_metrics
from coversearch.index.bundle import load_bundle
from coversearch.model.checkpoint import load_checkpoint
from coversearch.model.embed import embed_sequences

def load(index_dir):
    bundle = load_bundle(index_dir, load_index=False)
    cache = api._cache_of(bundle)
    net, info = load_checkpoint(bundle.own_model())
    labels = np.array(bundle.items.column("work_id").to_pylist())
    vectors = np.asarray(bundle.vectors, np.float32)
    seqs = cache.sequences()
    cf = Path(index_dir).resolve().parent / f".adapt-align-{info['model_hash']}-{Path(index_dir).name}.npz"
    known = {}
    if cf.is_file():
        z = np.load(cf); known = {(int(a), int(b)): tuple(v) for (a, b), v in zip(z["pairs"], z["vals"])}
    return net, info, labels, vectors, seqs, known

def m(vec, labels):
    r = retrieval_metrics(vec, labels); return {k: round(float(r[k]), 4) for k in ("map", "mr1", "p_at_10")}

def bn_frozen(model):
    import types
    bns = [mm for mm in model.modules() if isinstance(mm, torch.nn.modules.batchnorm._BatchNorm)]
    orig = model.train
    def train(self, mode=True):
        torch.nn.Module.train(self, mode)
        for b in bns: b.eval()
        return self
    model.train = types.MethodType(train, model)
    return model

def run(net, seqs, labels, pairs, tag, bn=False, **tk):
    t = time.perf_counter()
    n2 = copy.deepcopy(net)
    if bn: bn_frozen(n2)
    cfg = FinetuneConfig(**{"threads": 1, **tk})
    fit = finetune(n2, seqs.__getitem__, len(seqs), pairs, cfg)
    vec = embed_sequences(n2, seqs, batch_size=8, threads=1)
    r = m(vec, labels)
    pq = pair_quality(pairs, labels)
    print(json.dumps({"tag": tag, "bn_frozen": bn, **tk, "n_pairs": len(pairs), "prec": round(pq["precision"],3), **r,
                      "loss": [fit["loss_first"], fit["loss_last"]], "kept": fit.get("steps"), "checks": fit.get("checks"), "s": round(time.perf_counter()-t,1)}), flush=True)
    return n2, vec

def adabn(net, seqs, labels, crop=256, passes=2, full=False):
    from coversearch.adapt.finetune import view
    n2 = copy.deepcopy(net)
    bns = [mm for mm in n2.modules() if isinstance(mm, torch.nn.modules.batchnorm._BatchNorm)]
    for b in bns: b.reset_running_stats(); b.momentum = None
    n2.train(); rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(passes):
            idx = rng.permutation(len(seqs))
            for s in range(0, len(idx), 32):
                x = np.stack([view(seqs[i], crop, rng, stretch_range=(1,1), noise=0) for i in idx[s:s+32]])
                n2(torch.from_numpy(x))
    n2.eval()
    vec = embed_sequences(n2, seqs, batch_size=8, threads=1)
    print(json.dumps({"tag": "adabn", "bns": len(bns), **m(vec, labels)}), flush=True)
    return n2
