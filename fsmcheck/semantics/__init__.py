"""The protocol's semantics, below the engines: what a model means, engine-free.

Both engines (:mod:`fsmcheck.engines`), the verifier (:mod:`fsmcheck.verifier`) and
every consumer of a derived fact (generate, pack, tracecheck, orchestration, diff)
read these modules; they import nothing above :mod:`fsmcheck.model`.

- :mod:`.graphs`: the arc graph of a configuration and the system graph (open,
  requests, resets, failures);
- :mod:`.combination`: the path rule and the derived combination table;
- :mod:`.walk`: a kernel walk table run against the model;
- :mod:`.p2p`: the P2P quiesce rule (``[p2p]``);
- :mod:`.sessions`: the data-session effect each arc must have;
- :mod:`.deadline`: the wall-clock bound every long computation polls;
- :mod:`.verdict`: the verdict and counterexample types the engines return.
"""
