"""W-method checking sequences for a model whose state is observable.

Chow's W-method: with a state cover P (a shortest input sequence to each
state), the input alphabet X and a characterization set W, the suite
P . X^{<= m+1} . W detects every output and transfer fault of an
implementation with at most n + m states. Here every state answers GET
with its own name, so W = {GET} separates all states, and the runtime checks
the output (success or EINVAL, handle or not) and GET after *every* input,
which only strengthens the suite.
"""

from __future__ import annotations

import itertools

from ..semantics.combination import PATH, derive_table
from ..model.schema import Config, Model

__all__ = ["w_method_sequences", "input_alphabet", "FAULT_MODEL"]

FAULT_MODEL = ("output faults (wrong success/EINVAL, a handle returned or not) and transfer faults "
               "(wrong next state) of an implementation with at most {n} + {m} states, inputs SET of "
               "every state value, an out-of-range value and reset; W = {{GET}}")


def input_alphabet(model: Model) -> list[tuple]:
    """Every SET value of a state, one value naming no state, and reset."""
    out = [("set", s.value) for s in model.states]
    out.append(("set", max(s.value for s in model.states) + 1))
    out.append(("reset",))
    return out


def w_method_sequences(model: Model, config: Config, extra_states: int = 1, table=None) -> list[tuple]:
    """The W-method suite for ``config`` with ``extra_states`` (m >= 0).

    ``table`` is the configuration's derived combination table
    (:func:`~fsmcheck.semantics.combination.derive_table`), derived here when
    not given.

    Returns input sequences (tuples of inputs), each starting at the state at
    open, without duplicates, in a deterministic order (state order, then
    length, then alphabet order). States no request reaches from the state
    at open (the error state) are not in the cover.
    """
    if table is None:
        table = derive_table(model, config)
    cover = {model.initial: ()}
    for state in model.supported(config.flags):
        entry = table.get((model.initial, state))
        if state != model.initial and entry is not None and entry.outcome == PATH:
            cover[state] = (("set", model.state(state).value),)
    alphabet = input_alphabet(model)
    seen, out = set(), []
    for state in model.state_names:
        if state not in cover:
            continue
        for length in range(1, extra_states + 2):
            for middle in itertools.product(alphabet, repeat=length):
                seq = cover[state] + middle
                if seq not in seen:
                    seen.add(seq)
                    out.append(seq)
    return out
