"""`benchmarks.worker_perf` reads what `perf` prints: samples per C function and per syscall,
turned into µs a task. From text as perf 6.1 prints it; the sampling is the benchmark's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks.worker_perf import per_task, symbol_counts, syscall_counts

REPORT = """\
# Samples: 20K of event 'cpu-clock:pppH'
#
# Overhead       Samples  Symbol
# ........  ............  ..................................
#
    26.95%          5475  [.] _PyEval_EvalFrameDefault
     6.73%          1367  [k] _raw_spin_unlock_irqrestore
     0.69%           141  [.] gc_collect_main
     0.42%            85  [.] visit_decref
     0.01%             2  [.] 0x0000000000137bab

"""

SCRIPT = """\
\tffffffff8a1b2c30 _raw_spin_unlock_irqrestore
\tffffffff8a7c1d20 sock_def_readable
\tffffffff8a2e0f10 ksys_write
\tffffffff8a2e1000 do_syscall_64
\tffffffff8ac00080 entry_SYSCALL_64_after_hwframe
\t7f1c2d3e4f50 __GI___libc_write

\tffffffff8a300010 ep_poll
\tffffffff8a300200 __x64_sys_epoll_pwait
\tffffffff8ac00080 entry_SYSCALL_64_after_hwframe

\t55d0c0a1b2c3 _PyEval_EvalFrameDefault
\t55d0c0a1b400 _PyFunction_Vectorcall
"""


def test_the_report_gives_samples_per_function_kernel_apart_from_user() -> None:
    counts = symbol_counts(REPORT)
    assert counts[("user", "_PyEval_EvalFrameDefault")] == 5475
    assert counts[("kernel", "_raw_spin_unlock_irqrestore")] == 1367
    assert counts[("user", "0x0000000000137bab")] == 2
    assert sum(counts.values()) == 5475 + 1367 + 141 + 85 + 2  # header lines are not samples


def test_kernel_samples_are_counted_under_their_syscall_and_user_ones_under_none() -> None:
    assert syscall_counts(SCRIPT) == {"ksys_write": 1, "__x64_sys_epoll_pwait": 1}


def test_samples_become_microseconds_a_task() -> None:
    # 1,000 tasks in the window at 1,000 samples a second: a sample is 1 ms, 1 µs a task
    figures = per_task(symbol_counts(REPORT), syscall_counts(SCRIPT), 1000, 1000)
    assert figures["all"] == 5475 + 1367 + 141 + 85 + 2
    assert figures["kernel"] == 1367
    assert figures["collector"] == 141 + 85  # gc_collect_main and visit_decref
    assert figures["syscall: ksys_write"] == 1
    assert figures["C: _PyEval_EvalFrameDefault (user)"] == 5475
