"""A hypothesis state machine that drives a v2 device with the model as oracle.

Rules: request any state value (and values naming no state), reset, read
the current session, feed a saved stream or garbage into a resuming session.
After every step the device's GET must equal the model's state. Hypothesis
shrinks a failing run to a minimal sequence. The adapter, the seed
(``--fsmcheck-seed``) and the runs (``--fsmcheck-examples``) are the run's
(``config.stash[RUN]``), taken when the test runs, not when the pack is
imported.
"""

from __future__ import annotations

import unittest
from functools import partial

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from .plugin import RUN
from .v2_checks import apply_request, open_device, read_fd, saved_stream, write_fd
from .v2_spec import RULES, V2Spec

__all__ = ["machine_test_case"]


def machine_test_case(spec: V2Spec):
    """A ``unittest.TestCase`` class running the state machine for ``spec``
    on the ``fsmcheck_v2`` adapter, seeded with the run's seed."""
    values = sorted(spec.states.values()) + [max(spec.states.values()) + 1, 2**32 - 1]

    class V2Machine(RuleBasedStateMachine):
        def __init__(self, adapter):
            super().__init__()
            self.adapter = adapter
            # Saved before the device is opened: a real device can be opened only once at a time.
            self.stream = saved_stream(self.adapter, spec) if "RESUMING" in spec.supported else b""
            self._device = open_device(self.adapter, spec)
            self.h = self._device.__enter__()
            self.state, self.handle, self.fed, self.fed_valid = spec.initial, None, 0, False

        def teardown(self):
            self._device.__exit__(None, None, None)

        @rule(value=st.sampled_from(values))
        def request(self, value):
            step = apply_request(self.h, spec, self.state, self.handle, value, stream_complete=self.fed_valid)
            if step.state == "RESUMING" and step.new_handle is not None:
                self.fed, self.fed_valid = 0, False
            self.state, self.handle = step.state, step.handle

        @rule()
        def reset(self):
            self.h.reset()
            self.state, self.handle = spec.reset, None

        @precondition(lambda self: self.handle is not None and spec.direction(self.state) == "read")
        @rule()
        def read_session(self):
            out = read_fd(self.h, self.handle, 64)
            if not out.ok and out.error != "ENOMSG":
                raise self.h.violation(f"read in {self.state} failed with {out.error}", expected="data, b'' or ENOMSG",
                                       observed=out.error, rule=RULES["handle-kept"])

        @precondition(lambda self: self.handle is not None and self.state == "RESUMING" and self.fed == 0)
        @rule()
        def feed_saved_stream(self):
            # write() returns the bytes accepted: the rest is written again.
            accepted, stalls = 0, 0
            while accepted < len(self.stream) and stalls < 100:
                out = write_fd(self.h, self.handle, self.stream[accepted:])
                if not out.ok:
                    break
                accepted += out.value
                stalls = 0 if out.value else stalls + 1
            self.fed, self.fed_valid = accepted, accepted == len(self.stream)

        @precondition(lambda self: self.handle is not None and self.state == "RESUMING")
        @rule(data=st.binary(min_size=1, max_size=16))
        def feed_garbage(self, data):
            # A write the driver refuses adds nothing (mtty: ENOMEM past its buffer);
            # bytes it accepts spoil the stream.
            out = write_fd(self.h, self.handle, data)
            accepted = out.value if out.ok else 0
            if accepted:
                self.fed, self.fed_valid = self.fed + accepted, False

        @invariant()
        def device_state_matches_the_model(self):
            got = self.h.name(self.h.get())
            if got != self.state:
                raise self.h.violation(f"device_state is {got}, the model says {self.state}", expected=self.state,
                                       observed=got, rule=RULES["get"])

    V2Machine.__name__ = V2Machine.__qualname__ = f"V2Machine_{spec.flags_value}"

    class TestCase(unittest.TestCase):
        @pytest.fixture(autouse=True)
        def _fsmcheck(self, request, fsmcheck_v2):
            self.pack_run, self.adapter = request.config.stash[RUN], fsmcheck_v2

        def runTest(self):
            run_state_machine_as_test(seed(self.pack_run.seed)(partial(V2Machine, self.adapter)), settings=settings(
                max_examples=self.pack_run.examples, stateful_step_count=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))

        runTest.is_hypothesis_test = True  # as hypothesis' own TestCase: its pytest plugin reports the steps

    TestCase.__name__ = TestCase.__qualname__ = f"V2Machine_{spec.flags_value}.TestCase"
    return TestCase
