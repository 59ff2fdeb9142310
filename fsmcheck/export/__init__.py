"""Exports for other tools: Promela for SPIN (:mod:`.promela`, :mod:`.spin`) and the versioned JSON graph (:mod:`.graph_json`)."""
