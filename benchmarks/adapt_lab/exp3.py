import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from adapt_lab import *
from coversearch.adapt.mine import mine_pairs
net, info, labels, vectors, seqs, known = load(sys.argv[1])
torch.set_num_threads(1)
adabn(net, seqs, labels)
mp = mine_pairs(vectors, seqs.__getitem__, MineConfig(), known=known).pairs
run(net, seqs, labels, mp, "mined anchor1", anchor=1.0)
run(net, seqs, labels, mp, "mined lr1e-4 300", lr=1e-4)
run(net, seqs, labels, mp, "mined anchor1 lr1e-4", anchor=1.0, lr=1e-4)
