"""Peak memory of a block of work: resident set (and CUDA allocations) in MB.

    with PeakMemory() as mem:
        train(cfg)
    mem.rss_mb, mem.cuda_mb, mem.scope

Used by the screen (per training and evaluation phase) and the benchmarks in bench/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


class PeakMemory:
    """Peak resident memory of this process over a block, in MB.

    Linux lets a process reset its own high-water mark (``/proc/self/clear_refs``, value 5), so
    each phase of a screen gets its own peak; elsewhere the figure is the process-lifetime peak
    (ru_maxrss) and says so. On CUDA the peak allocated memory is recorded too.
    """

    def __enter__(self) -> PeakMemory:
        self.scope = "phase"
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.scope = "process"
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_mb = _peak_rss_mb()
        self.cuda_mb = (
            torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        )


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
