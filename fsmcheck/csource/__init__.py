"""Reading kernel C: the combination walk of ``vfio_main.c`` and the arcs
of a driver's step function, parsed with pycparser.

Kernel files cannot be preprocessed here as a whole (their headers are not
installed and pycparser does not take GNU C), so fsmcheck parses only the
functions it needs: :mod:`.source` finds a function's text in a file or in
the ``+`` lines of a patch email and strips comments; :mod:`.cparse` parses
it with pycparser (with ``#line`` directives, so every node keeps its line
in the original file) and evaluates constant expressions. Regular
expressions only locate function boundaries; the meaning of conditions,
tables and returns comes from the C syntax tree.
"""
