"""Keeps the garbage collector's full passes rare and shorter in an API process.

A full (generation 2) pass walks every object the collector tracks, with the event loop
stopped. An API process with many live sockets tracks a few hundred objects per socket (the
ASGI middleware chain's coroutines and closures, tasks, futures), so under a crowd of sockets
each full pass holds up every request for hundreds of milliseconds: it was the `/health` tail
under WebSocket load (specs/benchmarks.md, "After issue 12"). The young passes stay as
CPython has them: they walk only recent objects, whatever the number of sockets.

Two changes, once startup is done:

- What startup built (modules, classes, the app, the runtime) lives as long as the process:
  `gc.freeze()` moves it out of every later pass.
- A full pass may run after `MIDDLE_PASSES_PER_FULL_PASS` middle-generation passes instead of
  CPython's 10 (it still also waits for the old generation to have grown by a quarter).
  Objects in reference cycles that died after a middle pass are reclaimed later: memory,
  not correctness. Everything else is freed by reference counting, as before.
"""

from __future__ import annotations

import gc

MIDDLE_PASSES_PER_FULL_PASS = 100


def settle_after_startup() -> None:
    """Called once the app has started: collect startup's garbage, freeze what is left."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, MIDDLE_PASSES_PER_FULL_PASS)
