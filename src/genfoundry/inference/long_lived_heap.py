"""Long-lived objects (imported libraries, loaded models) kept out of CPython's cyclic garbage collector.

The collector's oldest generation is rescanned whole from time to time. Once torch, transformers and diffusers are
imported and a model is loaded, that is ~750k objects, and one scan held every thread of the server for 0.25-1 s
on a 2-core machine (measured in bench/bench_overload.py): requests that take 1 ms waited that long. `gc.freeze()`
moves what exists now into a permanent generation that collections skip; objects made later (requests) are
collected as before.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()  # one freeze or unfreeze at a time (engines load on their own worker threads)


def freeze_long_lived_objects() -> None:
    """Collect what is garbage now, then freeze the rest: call after start-up and after loading a model."""
    with _lock:
        gc.collect()
        gc.freeze()


def collect_including_frozen() -> None:
    """A full collection that reaches frozen objects too (an unloaded model's cycles), then freeze what is left."""
    with _lock:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
