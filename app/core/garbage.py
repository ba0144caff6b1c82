"""The cyclic garbage collector, told once the process has started what never dies.

Under load, with Python's defaults, a worker spent 7-8% of its CPU collecting, much of it
in full collections walking the ~155,000 objects of the loaded modules, routes and
schemas, none of which ever become garbage. Once started, those are moved out of the
collector's sight (`gc.freeze`): 3.4-3.8% of the CPU, measured with `gc.callbacks` in
both workers of `python -m bench.run --only limit=50`. The collection thresholds stay
Python's: raising the young one to 10,000 took the collector under 1%, but the workers'
resident memory then grew 5-6% over a bench run, against the 5% it may.
"""

import gc
from functools import cache


@cache  # once per process, whatever the number of apps it starts
def freeze_startup_objects() -> None:
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
