"""Soak tick cost and jitter: CPU of one monitoring tick outside network waits, and how far the
APScheduler ticks drift from their schedule — each beside a baseline measured in the same run.

    python bench/tick_cost.py [--ticks 60] [--interval 0.5] [--seconds 20]

CPU is the main thread's own CPU time (time.thread_time) around `Monitor.tick`: the sandbox's
servers run in another thread and waiting on sockets costs no CPU, so the figure is golive's own
work (queries built and parsed, judgment, alert trackers, SQLite, the outbox). Its baseline is
`judge_window` alone — the three Prometheus queries and the verdicts, without golive's engine.
Jitter compares the scheduled tick times with when the ticks really started; its baseline is a
bare asyncio loop sleeping to the same schedule on the same event loop.
Targets: a tick well under 50 ms of CPU; jitter under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from bot.adapters.console import ConsoleTransport
from bot.domain.config import Secrets, validate_config
from bot.domain.model import StepStatus
from bot.engine.checkbook import monitoring_settings
from bot.engine.runtime import Runtime
from bot.sandbox import Sandbox
from bot.sandbox.demo import CHANNEL, PEOPLE, demo_config
from checks.monitoring import baseline_in, judge_window
from commands import MappingDirectory, dispatch


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"mean {statistics.mean(values) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms  "
        f"max {max(values) * 1000:6.2f} ms"
    )


async def _to_soak(runtime: Runtime) -> int:
    """Start a release and approve every step by its owner until the soak runs."""
    service = runtime.service
    directory = MappingDirectory(PEOPLE)
    await dispatch(service, PEOPLE["alice"], CHANNEL, "start v2.4.0", directory)
    for _ in range(60):
        await runtime.pump()
        rid = runtime.store.latest_in_channel(CHANNEL)
        assert rid is not None
        release = runtime.store.load(rid).release
        if release.step("soak").status is StepStatus.TIMING:
            return rid
        waiting = [s for s in release.steps if s.status is StepStatus.AWAITING]
        if not waiting:
            await asyncio.sleep(0.2)
            continue
        step = waiting[0]
        service.approve(CHANNEL, release.roles.user(step.owner), step.key, via="bench")
    raise SystemExit("the release did not reach the soak")


async def main(ticks: int, interval: float, seconds: float) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="golive-bench-") as place,
        Sandbox.start_in_thread(history=3600) as sandbox,
    ):
        folder = Path(place)
        data = demo_config(sandbox, folder)
        data["monitoring"]["soak"] = {"duration": "1h", "interval": f"{int(interval * 1000)}ms"}
        config = validate_config(data)
        runtime = Runtime(config, Secrets(sandbox.tokens), ConsoleTransport(lambda _: None))
        rid = await _to_soak(runtime)
        monitor = runtime.monitor
        settings = monitoring_settings(config)
        assert settings is not None
        evidences = [r.evidence for r in runtime.store.check_results(rid, "baseline")]
        baseline = baseline_in(evidences)
        window = config.monitoring.window

        bare: list[float] = []
        full: list[float] = []
        for _ in range(3):  # warm up connections and caches
            await judge_window(runtime.client, settings, window, baseline)
            await monitor.tick(rid)
        for _ in range(ticks):
            started = time.thread_time()
            await judge_window(runtime.client, settings, window, baseline)
            bare.append(time.thread_time() - started)
            started = time.thread_time()
            await monitor.tick(rid)
            full.append(time.thread_time() - started)
        print(f"soak tick CPU over {ticks} ticks (main thread, network waits excluded)")
        print(f"  golive tick (Monitor.tick)          {_ms(full)}")
        print(f"  baseline: queries + verdicts only   {_ms(bare)}")
        ratio = statistics.mean(full) / statistics.mean(bare)
        print(f"  ratio (mean)                        {ratio:.2f}x")
        print(f"  slowest golive tick: #{full.index(max(full)) + 1} of {ticks}")

        # Jitter: APScheduler's interval job against a bare asyncio sleep loop, same schedule.
        starts: list[float] = []
        original = monitor.tick

        async def recorded(release_id: int) -> None:
            starts.append(time.monotonic())
            await original(release_id)

        monitor.tick = recorded  # type: ignore[method-assign]
        bare_starts: list[float] = []

        async def sleeper(origin: float) -> None:
            k = 0
            while time.monotonic() - origin < seconds:
                k += 1
                await asyncio.sleep(max(origin + k * interval - time.monotonic(), 0))
                bare_starts.append(time.monotonic())

        await runtime.start()
        origin = time.monotonic()
        sleep_task = asyncio.get_running_loop().create_task(sleeper(origin))
        await asyncio.sleep(seconds)
        await sleep_task
        await runtime.stop()

        def lateness(points: list[float]) -> list[float]:
            first = points[0]
            return [p - (first + i * interval) for i, p in enumerate(points)]

        scheduled = lateness(starts)
        plain = lateness(bare_starts)
        print(
            f"tick jitter over {seconds:.0f} s at a {interval:g} s interval "
            f"({len(starts)} ticks; deviation from schedule)"
        )
        print(
            f"  APScheduler ticks                   max {max(map(abs, scheduled)) * 1000:7.1f} ms"
            f"  mean {statistics.mean(map(abs, scheduled)) * 1000:6.1f} ms"
        )
        print(
            f"  baseline: bare asyncio sleep loop   max {max(map(abs, plain)) * 1000:7.1f} ms"
            f"  mean {statistics.mean(map(abs, plain)) * 1000:6.1f} ms"
        )
        overlaps = sum(1 for a, b in itertools.pairwise(starts) if b - a < interval / 2)
        print(f"  overlapping ticks: {overlaps}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.ticks, args.interval, args.seconds))
