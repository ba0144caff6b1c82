"""The cyclic garbage collector, tuned once the process has started.

Under load, with Python's defaults, a worker spent 6-9% of its CPU collecting: every
700 new container objects started a young collection, and each full one walked the
~155,000 objects of the loaded modules, routes and schemas, none of which ever become
garbage. Once started, those are moved out of the collector's sight (`gc.freeze`) and
young collections run every 10,000 allocations: under 1% of the CPU, measured with
`gc.callbacks` in both workers of `python -m bench.run --only limit=50`. Objects freed
by reference counting (nearly all of a request's) are freed as before.
"""

import gc
from functools import cache

YOUNG_THRESHOLD = 10_000


@cache  # once per process, whatever the number of apps it starts
def freeze_startup_objects() -> None:
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _young, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
