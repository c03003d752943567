"""Peak resident memory of golive running a preflight that prints 100 MB, beside a quiet one.

    python bench/preflight_output.py [--mb 100] [--runs 3]

Each measurement is a fresh `python bench/preflight_output.py --child …` process that imports
golive's preflight check, runs one preflight through it and reports its own peak RSS (VmHWM from
/proc/self/status; the preflight's processes are not counted). The baseline, measured in the
same run and interleaved, is the same process running a preflight that prints one line. The
loud preflight writes `--mb` MiB of 1 KiB lines and exits 0; the figure of interest is the ratio
loud / quiet: golive's memory must not grow with the output. Exit 1 when it grows by more than
32 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOUD = (
    "import sys\n"
    "line = b'x' * 1023 + b'\\n'\n"
    "write = sys.stdout.buffer.write\n"
    "for _ in range({lines}):\n"
    "    write(line)\n"
)
QUIET = "print('preflight passed')\n"
ALLOWED_GROWTH_MB = 32.0


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(mode: str, mb: int) -> None:
    """Run one preflight through golive's check; print peak MiB, seconds, verdict, kept, read."""
    from checks.preflight import run_preflight

    with tempfile.TemporaryDirectory() as workdir:
        script = LOUD.format(lines=mb * 1024) if mode == "loud" else QUIET
        Path(workdir, "preflight.py").write_text(script)
        started = time.monotonic()
        result = asyncio.run(
            run_preflight(
                [sys.executable, "preflight.py"], workdir=workdir, timeout=120.0, variant="quick"
            )
        )
        elapsed = time.monotonic() - started
    kept = len(str(result.evidence.get("output", result.evidence.get("output_tail", ""))))
    seen = result.evidence.get("output_bytes", "?")
    print(f"{_peak_rss_mb():.1f} {elapsed:.2f} {result.status.value} {kept} {seen}")


def measure(mode: str, mb: int) -> tuple[float, float, str, int, str]:
    """Peak RSS (MiB), seconds, verdict and stored characters of one child run."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--mb", str(mb)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    return float(out[0]), float(out[1]), out[2], int(out[3]), out[4]


def main() -> int:
    """Interleave quiet and loud runs; print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["quiet", "loud"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.mb)
        return 0
    quiet: list[tuple[float, float, str, int, str]] = []
    loud: list[tuple[float, float, str, int, str]] = []
    for _ in range(args.runs):
        quiet.append(measure("quiet", args.mb))
        loud.append(measure("loud", args.mb))
    q_rss = statistics.median(r[0] for r in quiet)
    l_rss = statistics.median(r[0] for r in loud)
    print(f"preflight output: {args.mb} MiB, {args.runs} runs each, medians")
    print(
        f"  quiet preflight (baseline): peak RSS {q_rss:6.1f} MiB, "
        f"{statistics.median(r[1] for r in quiet):.2f} s, {quiet[0][2]}"
    )
    print(
        f"  {args.mb} MiB preflight:        peak RSS {l_rss:6.1f} MiB, "
        f"{statistics.median(r[1] for r in loud):.2f} s, {loud[0][2]}, "
        f"{loud[0][3]:,} characters kept of {loud[0][4]} bytes read"
    )
    print(f"  ratio loud / quiet: {l_rss / q_rss:.2f}× (growth {l_rss - q_rss:+.1f} MiB)")
    if l_rss - q_rss > ALLOWED_GROWTH_MB:
        print(f"MISS: memory grew by more than {ALLOWED_GROWTH_MB:g} MiB with the output")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
