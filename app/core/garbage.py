"""The cyclic garbage collector, told once the process has started what never dies.

Under load, full collections walk every object of the loaded modules, routes and schemas,
none of which ever becomes garbage. Once the process has started, those are moved out of
the collector's sight (`gc.freeze`). The collection thresholds stay Python's: raising the
young one cut the collector's work further but let the workers' memory grow
(bench/results/history.md has the figures).
"""

import gc
from functools import cache


@cache  # once per process, whatever the number of apps it starts
def freeze_startup_objects() -> None:
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
