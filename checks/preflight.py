"""Preflight: the configured script, run as an argv (never a shell) with a timeout.

The script gets a minimal environment (PATH, HOME, LANG and the names `preflight.env` lists),
never golive's own, so it cannot print golive's tokens. Its output is read as it comes and only
the first and last OUTPUT_HEAD / OUTPUT_TAIL bytes are kept, so a script printing gigabytes does
not grow golive's memory. It runs under `preflight_reaper.py`, a child subreaper that stops every
process the script started (setsid or not) when it ends or times out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from bot.domain.redact import Redactor
from checks.base import CheckResult, Status

NAME = "preflight"
TAIL_LINES = 40
TAIL_CHARS = 3000
OUTPUT_HEAD = 64 * 1024
OUTPUT_TAIL = 64 * 1024
CHUNK = 64 * 1024
BASE_ENV = ("PATH", "HOME", "LANG")
REAPER = Path(__file__).with_name("preflight_reaper.py")


def preflight_environment(
    lookup: Callable[[str], str | None], names: Sequence[str] = ()
) -> dict[str, str]:
    """PATH, HOME, LANG and the named variables, looked up in golive's environment; no others."""
    env = {name: value for name in (*BASE_ENV, *names) if (value := lookup(name)) is not None}
    env.setdefault("PATH", os.defpath)
    return env


class OutputCapture:
    """The first `head` and last `tail` bytes of a stream and how much went by between them.

    Each end keeps `margin` bytes more than it shows, so that a cut can be moved off a secret
    that straddles it instead of leaving half of it in the clear.
    """

    def __init__(self, head: int, tail: int, margin: int = 0) -> None:
        self.head_size, self.tail_size = head, tail
        self._head_cap, self._tail_cap = head + margin, tail + margin
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        """Take the next piece of output."""
        self.total += len(chunk)
        room = self._head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self._tail_cap:  # trim in batches, not on every chunk
                del self.tail[: len(self.tail) - self._tail_cap]

    def text(self, redactor: Redactor) -> tuple[str, int]:
        """The kept output, secrets redacted, and how many bytes were dropped from its middle."""
        if len(self.tail) > self._tail_cap:
            del self.tail[: len(self.tail) - self._tail_cap]
        between = self.total - len(self.head) - len(self.tail)
        if between == 0:
            data = bytes(self.head + self.tail)
            if len(data) <= self.head_size + self.tail_size:
                return redactor.text(_decode(data)), 0
            first = redactor.safe_cut(data, self.head_size, forward=False)
            last = redactor.safe_cut(data, len(data) - self.tail_size, forward=True)
            head, tail, dropped = data[:first], data[last:], last - first
        else:
            first = redactor.safe_cut(self.head, self.head_size, forward=False)
            last = redactor.safe_cut(self.tail, len(self.tail) - self.tail_size, forward=True)
            head, tail = bytes(self.head[:first]), bytes(self.tail[last:])
            dropped = len(self.head) - first + between + last
        marker = f"\n[… golive dropped {dropped:,} bytes of output here …]\n"
        return redactor.text(_decode(head)) + marker + redactor.text(_decode(tail)), dropped


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-TAIL_CHARS:]


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{n / 1000:.1f} kB"


def _executable(command: str, workdir: str, path: str) -> str:
    """What execvp would run, resolved from the workdir; OSError like execvp's when nothing."""
    if os.sep in command:
        candidate = os.path.join(workdir, command)
        if not os.path.exists(candidate):
            raise FileNotFoundError(2, "No such file or directory")
        if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
            raise PermissionError(13, "Permission denied")
        return candidate
    search = os.pathsep.join(os.path.join(workdir, d) for d in path.split(os.pathsep))
    found = shutil.which(command, path=search)
    if found is None:
        raise FileNotFoundError(2, "No such file or directory")
    return found


async def _stop(
    process: asyncio.subprocess.Process, reading: asyncio.Future[None], grace: float
) -> None:
    """Ask the supervisor to stop the tree; kill its group if it does not manage in time."""
    with suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    for wait, last_resort in ((grace + 5.0, signal.SIGKILL), (5.0, None)):
        try:
            await asyncio.wait_for(asyncio.shield(reading), timeout=wait)
            return
        except TimeoutError:
            if last_resort is None:
                reading.cancel()
                return
            with suppress(ProcessLookupError):
                os.killpg(process.pid, last_resort)


async def run_preflight(
    argv: Sequence[str],
    *,
    workdir: str,
    timeout: float,
    variant: str,
    grace: float = 3.0,
    env: dict[str, str] | None = None,
    redactor: Redactor | None = None,
) -> CheckResult:
    """Run the script in `workdir`; exit code 0 passes; the output (redacted) is evidence."""
    started = time.monotonic()
    redactor = redactor or Redactor()
    env = env if env is not None else preflight_environment(lambda name: None)
    evidence: dict[str, object] = {
        "argv": list(argv),
        "workdir": workdir,
        "variant": variant,
        "env": sorted(env),  # the names the script saw; never their values
    }
    if not os.path.isdir(workdir):
        return CheckResult(
            NAME, Status.ERROR, f"the preflight workdir {workdir} does not exist", evidence, 0.0
        )
    try:
        executable = _executable(argv[0], workdir, env.get("PATH", os.defpath))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(REAPER),
            f"{grace:g}",
            executable,
            ",".join(env),
            "--",
            *argv,
            cwd=workdir,
            env=env,
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
    capture = OutputCapture(OUTPUT_HEAD, OUTPUT_TAIL, margin=redactor.longest)

    async def read() -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(CHUNK):
            capture.add(chunk)
        await process.wait()

    reading = asyncio.ensure_future(read())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(reading), timeout=timeout)
    except TimeoutError:
        timed_out = True
        await _stop(process, reading, grace)
    except asyncio.CancelledError:
        await _stop(process, reading, grace)
        raise
    output, dropped = capture.text(redactor)
    evidence.update(
        output=output,
        output_bytes=capture.total,
        output_dropped=dropped,
        output_tail=_tail(output),
    )
    elapsed = time.monotonic() - started
    note = (
        f"; {_size(capture.total)} of output, the middle {_size(dropped)} not kept"
        if dropped
        else ""
    )
    if timed_out:
        return CheckResult(
            NAME,
            Status.ERROR,
            f"{variant} preflight did not finish within {timeout:g}s; golive stopped it{note}",
            evidence,
            elapsed,
        )
    evidence["exit_code"] = process.returncode
    if process.returncode == 0:
        return CheckResult(
            NAME, Status.PASS, f"{variant} preflight passed (exit 0){note}", evidence, elapsed
        )
    return CheckResult(
        NAME,
        Status.FAIL,
        f"{variant} preflight failed (exit {process.returncode}){note}",
        evidence,
        elapsed,
    )
