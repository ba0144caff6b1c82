"""A freed large block leaves the process (core.memory), where glibc would keep it."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")

# Allocates and frees a block of argon2id's size three times, then prints how much more
# resident memory the process holds than before.
_PROBE = """
import sys
from app.core.memory import return_large_blocks

def resident() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

if sys.argv[1] == "fixed":
    assert return_large_blocks()
before = resident()
for _ in range(3):
    block = bytearray(19 << 20)
    del block
print((resident() - before) // 1024)
"""


def _held_mib(mode: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(run.stdout)


def test_glibc_alone_keeps_a_freed_large_block() -> None:
    assert _held_mib("default") >= 15  # what the fixed threshold is for


def test_with_the_threshold_fixed_a_freed_large_block_is_returned() -> None:
    assert _held_mib("fixed") < 4
