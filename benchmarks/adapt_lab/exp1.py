import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from adapt_lab import *
from coversearch.adapt.mine import mine_pairs
net, info, labels, vectors, seqs, known = load(sys.argv[1])
print(m(vectors, labels), flush=True)
mined = mine_pairs(vectors, seqs.__getitem__, MineConfig(), known=known)
nbrs, cand = propose(vectors, 20)
true = labels[cand[:,0]]==labels[cand[:,1]]
oracle = cand[true]
# oracle subset the size of mined
mp = mined.pairs
tp = mp[labels[mp[:,0]]==labels[mp[:,1]]]
for spec in sys.argv[2:]:
    kind, _, rest = spec.partition(':')
    tk = {}
    bn = False; keep=None
    for kv in filter(None, rest.split(',')):
        k,v = kv.split('=')
        if k=='bn': bn = v=='1'
        elif k=='keep': keep=float(v)
        else: tk[k] = float(v) if '.' in v or 'e' in v else int(v)
    pairs = {'mined': mp, 'oracle': oracle, 'truemined': tp}[kind]
    if keep is not None:
        pairs = mine_pairs(vectors, seqs.__getitem__, MineConfig(keep=keep), known=known).pairs
        if kind=='truemined': pairs = pairs[labels[pairs[:,0]]==labels[pairs[:,1]]]
    run(net, seqs, labels, pairs, spec, bn=bn, **tk)
