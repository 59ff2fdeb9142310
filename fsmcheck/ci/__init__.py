"""Machine formats for CI: SARIF 2.1.0 (:mod:`.sarif`). Counterexample traces are in :mod:`fsmcheck.verifier.trace`."""
