"""Process-wide settings of the long-running commands (`printfleet worker`, `printfleet sink`)."""

from __future__ import annotations

import gc


def relax_gc() -> None:
    """Collect cycles rarely, and never among what exists at start.

    Python's cyclic collector runs after every 700 new container objects and, every few
    runs, rescans the whole heap. A worker or a sink makes and drops objects for every
    record (printer states, Kafka messages, columns) that hold no cycles and are freed by
    their reference counts, while a large heap stays alive (Faust, aiokafka, the
    buffered messages): those collections were a fifth of the worker's heartbeat path
    and a fifth of the sink's CPU (docs/streams-bench.md, docs/sink-bench.md). What
    exists when this is called is never garbage, so it is frozen out of collections.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
