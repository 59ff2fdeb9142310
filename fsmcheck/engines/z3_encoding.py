"""z3 encodings of a model's configuration.

Bit-encoded models (v1) use a bit-vector of the model's width for
``device_state``: a value *is* state ``X`` when its masked bits equal ``X``'s
value, the validity predicate is compiled from the model's expression, and
reserved bits stay free. Enum models (v2) use an enum sort with one constant
per state. On either, :class:`Encoding` gives the transition relations of a
configuration: ``arc`` (successful single steps), ``reset``, ``failure``
(any state to the error state) and ``system`` (their union).
"""

from __future__ import annotations

import itertools

import z3

from ..model.schema import Config, Model
from ..semantics.graphs import declared_effects
from ..semantics import deadline

__all__ = ["Encoding", "UnknownResult", "fresh_names", "solve"]

#: Source of unique suffixes for z3 sort names (z3 forbids redeclaring one).
fresh_names = itertools.count()


class UnknownResult(Exception):
    """z3 answered ``unknown`` (a timeout or an incomplete theory)."""


def solve(solver: z3.Solver, *assumptions) -> z3.ModelRef | None:
    """Check ``solver``; return a model if sat, None if unsat.

    The query's timeout is clamped to the time left before the run's
    deadline (:mod:`fsmcheck.semantics.deadline`), if one is set.

    Raises:
        UnknownResult: z3 returned ``unknown``; the reason is the message.
        DeadlineExpired: the run's deadline has passed.
    """
    limit = deadline.remaining_ms(2**31 - 1)
    if limit < 2**31 - 1:
        solver.set("timeout", min(limit, _timeout_of(solver)))
    result = solver.check(*assumptions)
    if result == z3.unknown:
        deadline.check()  # a query cut short by the deadline is the deadline's
        raise UnknownResult(solver.reason_unknown())
    return solver.model() if result == z3.sat else None


def _timeout_of(solver: z3.Solver) -> int:
    """The solver's own timeout (ms, set by :func:`new_solver`): clamping to a
    deadline never raises it."""
    return getattr(solver, "fsmcheck_timeout_ms", 2**31 - 1)


def new_solver(timeout_ms: int) -> z3.Solver:
    """A solver with per-query timeout ``timeout_ms`` (kept as the ceiling
    when :func:`solve` clamps it to a deadline)."""
    s = z3.Solver()
    s.set("timeout", timeout_ms)
    s.fsmcheck_timeout_ms = timeout_ms
    return s


class Encoding:
    """The z3 view of one model in one configuration.

    Attributes:
        model, config: what is encoded.
        sort: the z3 sort of a state (bit-vector or enum).
        const: for enum models, state name -> z3 constant.
    """

    def __init__(self, model: Model, config: Config):
        self.model, self.config = model, config
        self.bits = model.encoding == "bits"
        if self.bits:
            self.sort = z3.BitVecSort(model.width)
            self.const = {}
        else:
            # Constants are named by index, never by the state's name: z3
            # prints "" as <null> and could print two names alike.
            tag = next(fresh_names)
            self.sort, consts = z3.EnumSort(f"fsm_state_{tag}", [f"s{i}" for i in range(len(model.states))])
            self.const = dict(zip(model.state_names, consts))
            self._by_decl = {f"s{i}": name for i, name in enumerate(model.state_names)}
        self.supported_names = model.supported(config.flags)
        self._arc_pairs = None
        self._arc_template = None
        self._accepted = None

    # -- states ------------------------------------------------------------
    def var(self, name: str):
        """A fresh state variable."""
        return z3.Const(name, self.sort)

    def value(self, name: str):
        """The z3 term that is state ``name`` (bit encodings: reserved bits 0)."""
        if self.bits:
            return z3.BitVecVal(self.model.state(name).value, self.model.width)
        return self.const[name]

    def canon(self, x):
        """``x`` with reserved bits cleared (bit encodings); ``x`` itself for
        enum sorts. Functions over states are applied to this, so a value
        with reserved bits set is the state its masked bits name."""
        return x & self.model.mask if self.bits else x

    def canonical(self, x):
        """``x`` has no reserved bit set (always true for enum sorts)."""
        return (x & ~self.model.mask) == 0 if self.bits else z3.BoolVal(True)

    def is_state(self, x, name: str):
        """``x`` is state ``name`` (bit encodings compare masked bits)."""
        if self.bits:
            return (x & self.model.mask) == self.model.state(name).value
        return x == self.const[name]

    def is_any(self, x, names):
        return z3.Or([self.is_state(x, n) for n in names]) if names else z3.BoolVal(False)

    def supported(self, x):
        """``x`` is a state supported under the configuration's flags."""
        return self.is_any(x, self.supported_names)

    def name_of(self, m: z3.ModelRef, x) -> str:
        """The state name of ``x`` in z3 model ``m``."""
        v = m.eval(x, model_completion=True)
        if self.bits:
            name = self.model.name_of_value(v.as_long())
            return f"{v.as_long():#x}" if name is None else name
        return self._by_decl[v.decl().name()]

    def describe(self, m: z3.ModelRef, x) -> str:
        """Like :meth:`Model.describe`, plus reserved bits when set."""
        name = self.name_of(m, x)
        text = self.model.describe(name) if name in self.model.state_names else name
        if self.bits:
            raw = m.eval(x, model_completion=True).as_long()
            if raw & ~self.model.mask:
                text += f" [device_state={raw:#010x}]"
        return text

    # -- requests ----------------------------------------------------------
    def accepted(self, x):
        """A request naming ``x`` passes the value checks: for bit encodings
        the validity predicate on the full value, for enum models a supported,
        requestable state."""
        if self.bits and self.model.valid is not None:
            return z3.And(self.supported(x), self.model.valid.to_z3(x))
        names = [n for n in self.supported_names if self.model.state(n).requestable]
        return self.is_any(x, names)

    def accepted_names(self) -> list[str]:
        """The supported states a request naming their value passes the value
        checks for (:meth:`accepted` on each state's own value): for enum
        models the supported requestable states, for bit encodings decided
        by z3 on the validity predicate."""
        if self._accepted is None:
            if not self.bits or self.model.valid is None:
                self._accepted = [n for n in self.supported_names if self.model.state(n).requestable]
            else:
                self._accepted = [n for n in self.supported_names
                                  if z3.is_true(z3.simplify(self.accepted(self.value(n))))]
        return list(self._accepted)

    # -- relations ---------------------------------------------------------
    def arc_pairs(self) -> list[tuple[str, str]]:
        """The configuration's arcs as ``(src, dst)`` state names, in
        declaration order: the declared arcs its flags enable between
        supported states (with a tag its profile lists, if it lists any), or
        for an ``all-requestable`` profile every ordered pair of distinct
        states a request may name (decided by z3 on each state's value)."""
        if self._arc_pairs is None:
            model, config = self.model, self.config
            profile = model.profile(config.profile)
            if profile.arcs == "all-requestable":
                ok = self.accepted_names()
                pairs = [(u, v) for u in ok for v in ok if u != v]
            else:
                # the same selection as the explicit engine's graphs, in declaration order
                pairs = list(declared_effects(model, config))
            self._arc_pairs = pairs
        return self._arc_pairs

    def arc(self, x, y):
        """A successful single step ``x -> y`` of the configuration.

        Built once per encoding over two template variables and instantiated
        with :func:`z3.substitute` (one C call), not rebuilt term by term."""
        if self._arc_template is None:
            tx, ty = self.var("__arc_x"), self.var("__arc_y")
            self._arc_template = (tx, ty, self._arc_formula(tx, ty))
        tx, ty, formula = self._arc_template
        return z3.substitute(formula, (tx, x), (ty, y))

    def _arc_formula(self, x, y):
        model, config = self.model, self.config
        profile = model.profile(config.profile)
        if profile.arcs == "all-requestable":
            same = (x & model.mask) == (y & model.mask) if self.bits else x == y
            return z3.And(self.accepted(x), self.accepted(y), z3.Not(same))
        terms = [z3.And(self.is_state(x, u), self.is_state(y, v)) for u, v in self.arc_pairs()]
        return z3.Or(terms) if terms else z3.BoolVal(False)

    def reset(self, x, y):
        """Reset from any supported state to the reset target."""
        return z3.And(self.supported(x), y == self.value(self.model.reset))

    def failure(self, x, y):
        """A failed request may leave the device in the error state."""
        if self.model.error is None or self.model.error not in self.supported_names:
            return z3.BoolVal(False)
        return z3.And(self.supported(x), z3.Not(self.is_state(x, self.model.error)),
                      self.is_state(y, self.model.error))

    def system(self, x, y):
        """Everything that can happen: an arc, a reset or a failure."""
        return z3.Or(self.arc(x, y), self.reset(x, y), self.failure(x, y))

    def initial(self, x):
        """``x`` is the state at open (bit encodings: exactly its value)."""
        return x == self.value(self.model.initial)
