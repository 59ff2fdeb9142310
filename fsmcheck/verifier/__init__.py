"""The verifier: properties, their verdicts on both engines, and how they are reported.

- :mod:`.verify` decides a model's properties on both engines (:mod:`fsmcheck.engines`)
  and combines their verdicts (:mod:`fsmcheck.semantics.verdict`); :mod:`.verify_report`
  prints them.
- :mod:`.properties` lists the properties; :mod:`.trace` turns counterexamples into
  ITF-shaped traces; :mod:`.exit_codes` holds the commands' exit codes (a leaf: no
  engine is imported).

What a model means (combination table, arc graphs, walk, P2P rule, sessions) lives
below the engines, in :mod:`fsmcheck.semantics`.
"""
