"""Host memory of training on a CPU: have glibc hand freed activation blocks back to the system."""

from __future__ import annotations

import ctypes
import sys

from middo.log import get_logger

log = get_logger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1 << 16


def return_freed_memory(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; whether it was set (False off glibc).

    glibc raises its threshold with every large block freed, up to 32 MiB, after which activation tensors come from
    the heap and stay in the process when freed: 1-5 GB of dead memory in a CPU fine-tune of a 135M model. With a
    fixed threshold, blocks above it are mapped on their own and unmapped when freed. Mapping costs page faults on
    every large allocation (half the speed of the demo's 0.76M model), so a train stage fixes it only when it trades
    compute for memory anyway: with gradient checkpointing on.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if not libc.mallopt(M_MMAP_THRESHOLD, threshold):
        log.warning("glibc refused an mmap threshold of %d bytes; freed activations may stay in memory", threshold)
        return False
    return True
