import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from adapt_lab import *
from coversearch.adapt.mine import mine_pairs
net, info, labels, vectors, seqs, known = load(sys.argv[1])
torch.set_num_threads(1)
print(m(vectors, labels), flush=True)
for spec in sys.argv[2:]:
    tag, _, rest = spec.partition(':')
    mk, tk = {}, {}
    for kv in filter(None, rest.split(',')):
        k, v = kv.split('=')
        v = float(v) if ('.' in v or 'e' in v) else int(v)
        (mk if k in ('keep', 'shortlist') else tk)[k] = v
    md = mine_pairs(vectors, seqs.__getitem__, MineConfig(**mk), known=known)
    if not known: pass
    run(net, seqs, labels, md.pairs, spec, **tk)
# save alignment cache if new
cf = Path(sys.argv[1]).resolve().parent / f".adapt-align-{info['model_hash']}-{Path(sys.argv[1]).name}.npz"
if not cf.is_file() and known:
    keys = sorted(known); np.savez(cf, pairs=np.array(keys, np.int64), vals=np.array([known[k] for k in keys], np.float64))
