"""An adapter factory for tests: the reference driver with PRE_COPY's
temporary end of stream as b"" instead of ENOMSG (like mtty)."""

from fsmcheck.drivers.mutants_v2 import PreCopyEndOfStream
from fsmcheck.drivers.reference import ReferenceV2Adapter


def factory(protocol: str):
    return ReferenceV2Adapter(PreCopyEndOfStream) if protocol == "v2" else None
