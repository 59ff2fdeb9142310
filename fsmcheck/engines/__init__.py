"""The two engines that decide every property.

- :mod:`.explicit`: networkx graphs of each configuration;
- :mod:`.symbolic`: z3 (bit-vectors for bit encodings, an enum sort
  otherwise), unrolled for bounded model checking.

Each exposes ``check(prop_name, model, config, **options) -> Verdict``.
"""
