"""The earlier attempts at this task, re-implemented as baselines (issue 14).

Five earlier write-ups reported weak results on Da-TACOS features; each is
rebuilt here so it can be trained on the same synthetic training works and
evaluated through the engine's own index and metric code
(``benchmarks/baselines.py`` runs them all):

* :mod:`.aggregate` + :mod:`.autoencoder` -- (a) time-averaged features per
  performance, a linear and a deep autoencoder (MSE), embedding = the code;
* :mod:`.siamese` -- (b) a Siamese 2-D CNN on min-max-normalised, zero-padded
  HPCP with contrastive loss on balanced pairs, and (c) a Siamese residual
  1-D CNN with a learned weighted squared-difference head and binary
  cross-entropy;
* :mod:`.quantum` -- (d) (c) with a small variational quantum layer after the
  embedding, simulated as a state vector in plain torch.

(e), the non-learned baselines, live in :mod:`coversearch.evaluate.baselines`
and :mod:`coversearch.align`.
"""
