"""What the model says about one device: requests, kernel paths, data sessions.

:class:`DeviceModel` holds a device's state *as the model sees it* under its
flag set and answers the per-device questions of ``check-trace``:

* :meth:`DeviceModel.entry` -- the combination-table cell of a request
  (:func:`fsmcheck.semantics.combination.derive_table`): rejected, a no-op,
  or the kernel path of arcs it walks. A model without a ``[combination]``
  rule (v1) accepts exactly its arcs.
* :meth:`DeviceModel.move` -- follow a path, starting, keeping or ending the
  data session as each arc's ``session`` effect says (vfio.h: entering the
  saving group or RESUMING "will return a new data_fd"; "The PRE_COPY arc
  will terminate a data transfer session").
* :meth:`DeviceModel.data_problem` -- whether save (read) or load (write)
  data may move now: only in a session group of that direction, with a
  session open.
* :meth:`DeviceModel.recovery_problem` -- whether a failed request's
  recovery is legal: vfio.h, "the user may see any step along the path in
  the device_state if SET_STATE fails", so the recover state must be a
  request the model accepts from one of those states (or a reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..model.schema import Config, Model
from ..semantics.combination import NOOP, PATH, REJECTED, Entry, derive_table
from ..semantics.graphs import arc_graph

__all__ = ["Tables", "DeviceModel"]


class Tables:
    """The derived combination table and arc graph of each configuration, computed once."""

    def __init__(self, model: Model):
        self.model = model
        self._tables: dict[Config, dict[tuple[str, str], Entry]] = {}
        self._graphs: dict[Config, nx.DiGraph] = {}

    def graph(self, config: Config) -> nx.DiGraph:
        """The arc graph of ``config`` (:func:`fsmcheck.semantics.graphs.arc_graph`)."""
        if config not in self._graphs:
            self._graphs[config] = arc_graph(self.model, config)
        return self._graphs[config]

    def entry(self, config: Config, current: str, requested: str) -> Entry:
        """The cell for ``current -> requested`` under ``config``.

        A current state the flag set does not support gives a rejected
        entry saying so.
        """
        model = self.model
        if model.combination is not None:
            if config not in self._tables:
                self._tables[config] = derive_table(model, config)
            found = self._tables[config].get((current, requested))
            if found is not None:
                return found
            return Entry(current, requested, REJECTED,
                         reason=f"{current} is not supported under flags {config.label}")
        graph = self.graph(config)
        if current == requested:
            return Entry(current, requested, NOOP)
        if graph.has_edge(current, requested):
            return Entry(current, requested, PATH, path=(requested,), alternatives=((requested,),))
        return Entry(current, requested, REJECTED, reason=f"no arc {current} -> {requested} under {config.label}")


@dataclass
class DeviceModel:
    """One device's state and data session as the model follows them.

    Attributes:
        name: the device.
        config: its configuration (flag set and profile).
        state: the state the model has it in.
        session: the session group of the open data session, or None.
        session_line: the line that started the open session (0 when none).
        ended_line: the line where the last session ended (0 when none).
    """

    name: str
    config: Config
    tables: Tables = field(repr=False)
    state: str = ""
    session: str | None = None
    session_line: int = 0
    ended_line: int = 0

    @property
    def model(self) -> Model:
        return self.tables.model

    def entry(self, current: str, requested: str) -> Entry:
        """The combination-table cell of a request (see :class:`Tables`)."""
        return self.tables.entry(self.config, current, requested)

    def move(self, line: int, path: tuple[str, ...]) -> None:
        """Walk ``path`` (states entered in turn) from :attr:`state`, applying
        each arc's session effect; a step with no arc (a recorded state the
        model did not predict) ends any session when it leaves the group."""
        graph = self.tables.graph(self.config)
        groups = self.model.session_groups
        for nxt in path:
            prev = self.state
            if graph.has_edge(prev, nxt):
                effect = graph.edges[prev, nxt].get("session", "none")
            else:
                gp, gn = self.model.group_of(prev, groups), self.model.group_of(nxt, groups)
                effect = "none" if gp == gn else ("starts" if gn else "ends")
            if effect == "starts":
                self.session, self.session_line = self.model.group_of(nxt, groups), line
            elif effect == "ends" and self.session is not None:
                self.session, self.ended_line = None, line
            self.state = nxt

    def jump(self, line: int, state: str) -> None:
        """The device is put in ``state`` by a reset or a failure: any
        session ends (vfio.h: a reset returns device_state to RUNNING)."""
        if self.session is not None:
            self.session, self.ended_line = None, line
        self.state = state

    def close(self, line: int, direction: str) -> None:
        """QEMU closed the data_fd of a session of ``direction`` (``read`` for
        vfio_save_cleanup, ``write`` for vfio_load_cleanup)."""
        if self.session is not None and self.model.session_directions.get(self.session) == direction:
            self.session, self.ended_line = None, line

    def data_problem(self, direction: str) -> str | None:
        """Why data of ``direction`` (``read`` = save, ``write`` = load) may
        not move now, or None when it may."""
        model = self.model
        groups = [g for g in model.session_groups if model.session_directions.get(g) == direction]
        here = model.group_of(self.state, tuple(groups))
        ended = f"; its last session ended at line {self.ended_line}" if self.ended_line else ""
        if here is None:
            names = " or ".join(f"the {g} group ({', '.join(model.groups.get(g, ()))})" for g in groups)
            return f"the device is {self.state}, outside {names}{ended}"
        if self.session != here:
            return f"the device is {self.state} but no {here} session is open{ended or ' (none was started)'}"
        return None

    def recovery_problem(self, current: str, path: tuple[str, ...], recover: str) -> str | None:
        """Why recovering to ``recover`` after a failed request walking ``path``
        from ``current`` is not legal, or None when it is."""
        for left in (current, *path):
            if left == self.model.error:
                continue
            if self.entry(left, recover).outcome in (PATH, NOOP):
                return None
        where = ", ".join((current, *path))
        return f"the model accepts a request of {recover} from none of the states the failed request may " \
               f"have left the device in ({where})"
