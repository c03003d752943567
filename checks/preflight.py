"""Preflight: the configured script, run as an argv (never a shell) with a timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from contextlib import suppress

from checks.base import CheckResult, Status

NAME = "preflight"
TAIL_LINES = 40
TAIL_CHARS = 3000


def _tail(output: bytes) -> str:
    text = output.decode("utf-8", errors="replace")
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


async def _stop_group(process: asyncio.subprocess.Process, grace: float) -> None:
    """Terminate the whole process group, then kill it if it lingers."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), timeout=wait)
            return
        except TimeoutError:
            continue


async def run_preflight(
    argv: Sequence[str], *, workdir: str, timeout: float, variant: str, grace: float = 3.0
) -> CheckResult:
    """Run the script in `workdir`; exit code 0 passes; the output tail is evidence."""
    started = time.monotonic()
    evidence: dict[str, object] = {"argv": list(argv), "workdir": workdir, "variant": variant}
    if not os.path.isdir(workdir):
        return CheckResult(
            NAME, Status.ERROR, f"the preflight workdir {workdir} does not exist", evidence, 0.0
        )
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CheckResult(
            NAME,
            Status.ERROR,
            f"could not run {argv[0]}: {exc.strerror or exc}",
            evidence,
            time.monotonic() - started,
        )
    reader = asyncio.ensure_future(process.communicate())
    try:
        output, _ = await asyncio.wait_for(asyncio.shield(reader), timeout=timeout)
    except TimeoutError:
        await _stop_group(process, grace)
        try:
            output, _ = await asyncio.wait_for(reader, timeout=5.0)
        except TimeoutError:
            reader.cancel()
            output = b""
        evidence["output_tail"] = _tail(output)
        return CheckResult(
            NAME,
            Status.ERROR,
            f"{variant} preflight did not finish within {timeout:g}s; golive stopped it",
            evidence,
            time.monotonic() - started,
        )
    except asyncio.CancelledError:
        await _stop_group(process, grace)
        raise
    evidence["exit_code"] = process.returncode
    evidence["output_tail"] = _tail(output)
    elapsed = time.monotonic() - started
    if process.returncode == 0:
        return CheckResult(
            NAME, Status.PASS, f"{variant} preflight passed (exit 0)", evidence, elapsed
        )
    return CheckResult(
        NAME,
        Status.FAIL,
        f"{variant} preflight failed (exit {process.returncode})",
        evidence,
        elapsed,
    )
