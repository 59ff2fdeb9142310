"""The verifier: properties, their verdicts on both engines, and what is derived from a model.

- :mod:`.verify` decides a model's properties on both engines (:mod:`fsmcheck.engines`)
  and combines their verdicts (:mod:`.verdict`); :mod:`.verify_report` prints them.
- :mod:`.combination` derives a flag set's combination table; :mod:`.graphs` builds
  the arc graphs; :mod:`.walk` runs a walk table; :mod:`.properties` lists the
  properties; :mod:`.trace` turns counterexamples into ITF-shaped traces;
  :mod:`.exit_codes` holds the commands' exit codes (a leaf: no engine is imported).
"""
