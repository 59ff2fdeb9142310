"""The pack suite of the optional capability PRECOPY_INFO_REINIT.

The uAPI (2026) adds ``VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 = 12``: after a
user opts in, ``VFIO_MIG_GET_PRECOPY_INFO`` may set
``VFIO_PRECOPY_INFO_REINIT`` and report a fresh ``initial_bytes`` during
PRE_COPY (models/variants/vfio_v2_precopy_reinit.toml, ``[[capabilities]]``).

Adapter (optional; without it the suite is skipped, not failed)::

    class MyV2Device:
        def precopy_info_v2(self, handle: int) -> tuple[int, int, bool]:
            # VFIO_MIG_GET_PRECOPY_INFO after opting in to feature 12 (the
            # adapter opts the device in before its first call):
            # (initial_bytes, dirty_bytes, VFIO_PRECOPY_INFO_REINIT is set)
            ...

What the suite checks in each pre-copy state, reading the data fd in steps:

- MUST: the query works on the data fd (as VFIO_MIG_GET_PRECOPY_INFO must
  for a driver that claims PRE_COPY) and returns two byte counts >= 0 and a
  boolean;
- MUST: ``initial_bytes`` never exceeds what was left of it after the
  previous query and read unless REINIT is set -- a fresh ``initial_bytes``
  is exactly what the flag announces;
- MUST: after a REINIT the data fd still belongs to the same session (a read
  does not fail with ENODEV);
- SHOULD (advisory): in STOP_COPY the query fails with EINVAL.
"""

from __future__ import annotations

import pytest

from .coverage import advise
from .harness import AdapterFault
from .v2_checks import open_device, read_fd

__all__ = ["check_precopy_reinit", "CAPABILITY", "RULES"]

#: The capability name this suite tests (``[[capabilities]] name``).
CAPABILITY = "PRECOPY_INFO_REINIT"

#: Sources quoted in violations.
RULES = {
    "info": "vfio.h VFIO_MIG_GET_PRECOPY_INFO: mandatory for a driver that claims PRE_COPY; "
            "after opting in to VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 it reports VFIO_PRECOPY_INFO_REINIT",
    "reinit": "vfio.h (2026) VFIO_PRECOPY_INFO_REINIT: a fresh initial_bytes is reported with the flag set; "
              "without it initial_bytes only drops as data is read",
    "session": "vfio.h: moving inside the saving group, and a re-initialised initial_bytes, keep the data_fd",
    "einval": "vfio.h: VFIO_MIG_GET_PRECOPY_INFO is valid only in PRE_COPY states; should be EINVAL elsewhere",
}

#: Most query/read rounds per test (a device that never drains still ends).
MAX_ROUNDS = 256


def _info(h, handle: int):
    out = h._call(f"precopy_info_v2({handle})", h.device.precopy_info_v2, handle)
    if out.ok and not (isinstance(out.value, tuple) and len(out.value) == 3
                       and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in out.value[:2])
                       and isinstance(out.value[2], bool)):
        raise AdapterFault(h.report(f"precopy_info_v2 returned {out.value!r}, not "
                                    "(initial_bytes, dirty_bytes, reinit: bool)"))
    h.log.append(f"precopy_info_v2({handle}) -> " + (out.error or
                 "initial {0}, dirty {1}, reinit {2}".format(*out.value)))
    return out


def check_precopy_reinit(adapter, spec, state: str) -> None:
    """The PRECOPY_INFO_REINIT suite in pre-copy state ``state`` (see the
    module docstring).

    Args:
        adapter: the pack's v2 adapter.
        spec: the module's :class:`~fsmcheck.pack.v2_spec.V2Spec`.
        state: a pre-copy state the flag set supports (PRE_COPY, PRE_COPY_P2P).

    Raises:
        ProtocolViolation: a MUST above is broken.
        AdapterFault: the adapter's method returns the wrong shape or hangs.
    """
    with open_device(adapter, spec) as h:
        if not hasattr(h.device, "precopy_info_v2"):
            pytest.skip("the adapter's device has no precopy_info_v2 "
                        "(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_PRECOPY_INFO_REINIT)")
        if spec.outcome(spec.initial, state)[0] != "path":
            pytest.skip(f"{state} is not reachable from {spec.initial} with flags {spec.label}")
        out = h.set(spec.states[state])
        if not out.ok:
            raise h.violation(f"SET {state} failed with {out.error}", expected="success",
                              observed=out.error, rule=RULES["session"])
        handle = out.value
        if handle is None:
            raise h.violation(f"SET {state} returned no data_fd", expected="a new data_fd", observed="none",
                              rule=RULES["session"])
        left = None   # initial_bytes still expected after the last read
        reinits = 0
        for _ in range(MAX_ROUNDS):
            info = _info(h, handle)
            if not info.ok:
                raise h.violation(f"VFIO_MIG_GET_PRECOPY_INFO (v2) failed in {state} with {info.error}",
                                  expected="initial_bytes, dirty_bytes and the REINIT flag",
                                  observed=info.error, rule=RULES["info"])
            initial, dirty, reinit = info.value
            if reinit:
                reinits += 1
            elif left is not None and initial > left:
                raise h.violation(f"initial_bytes grew to {initial} (at most {left} were left) "
                                  "without VFIO_PRECOPY_INFO_REINIT", expected=f"initial_bytes <= {left}, "
                                  "or the REINIT flag", observed=f"initial_bytes {initial}, no REINIT",
                                  rule=RULES["reinit"])
            if initial == 0 and dirty == 0:
                break
            chunk = read_fd(h, handle, min(initial, 4096) or 4096)
            if reinit and chunk.error == "ENODEV":
                raise h.violation("the data_fd was disabled after VFIO_PRECOPY_INFO_REINIT",
                                  expected="the same session's data", observed="ENODEV", rule=RULES["session"])
            if not chunk.ok or not chunk.value:
                break
            left = max(initial - len(chunk.value), 0)
        if reinits:
            h.log.append(f"{reinits} VFIO_PRECOPY_INFO_REINIT report(s) seen")
        if spec.outcome(state, "STOP_COPY")[0] == "path" and h.set(spec.states["STOP_COPY"]).ok:
            late = _info(h, handle)
            if late.error != "EINVAL":
                advise(spec.label, f"STOP_COPY: VFIO_MIG_GET_PRECOPY_INFO (v2) gave {late.error or 'success'}, "
                                   f"not EINVAL ({RULES['einval']})")
