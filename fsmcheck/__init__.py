"""fsmcheck: a formal state-machine verifier for device-migration protocols.

The public surface:

- :func:`fsmcheck.model.load_model` reads and validates a model file;
- :func:`fsmcheck.verifier.verify.verify_model` decides the model's properties with
  both engines (networkx and z3);
- :func:`fsmcheck.semantics.combination.derive_table` derives a combination table.

The command line is ``fsmcheck`` (see ``fsmcheck --help``).
"""

__version__ = "0.1.0"
