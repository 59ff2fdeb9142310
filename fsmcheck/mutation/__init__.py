"""Mutation scoring of a conformance pack: the ``fsmcheck mutate`` command (the scoring itself is :mod:`fsmcheck.mutate`)."""
