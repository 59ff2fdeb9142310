"""Reference drivers (correct) and mutant drivers (each one plausible defect).

:mod:`.reference` is the adapter factory of the correct drivers and a
complete example of the adapter contract; :mod:`.mutants_v2` and
:mod:`.mutants_v1` hold the mutant zoo.
"""
