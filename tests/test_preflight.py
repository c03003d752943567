"""The preflight with real subprocesses: minimal environment, bounded and redacted output, and
no process of its tree (setsid or not) left behind on timeout or exit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bot.domain.redact import REDACTED, Redactor
from checks.base import Status
from checks.preflight import OutputCapture, preflight_environment, run_preflight

SECRET = "ghp_preflight_secret_value_0123456789"

# Forks a daemon that leaves the session and process group (setsid) and is orphaned (its
# parent exits at once), the way a careless script starts a background server; then `mode`.
ESCAPE = """\
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        with open("daemon.pid", "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    os._exit(0)
os.waitpid(pid, 0)
while not os.path.exists("daemon.pid") or not open("daemon.pid").read():
    time.sleep(0.01)
print("daemon started", flush=True)
if sys.argv[1] == "hang":
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """True while a process runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _script(tmp_path: Path, source: str) -> list[str]:
    (tmp_path / "preflight.py").write_text(source)
    return [sys.executable, "-S", "preflight.py"]


async def test_timeout_stops_a_setsid_grandchild(tmp_path: Path) -> None:
    """On timeout the daemon that left the process group with setsid is stopped as well."""
    argv = [*_script(tmp_path, ESCAPE), "hang"]
    result = await run_preflight(
        argv, workdir=str(tmp_path), timeout=0.8, variant="quick", grace=0.2
    )
    assert result.status is Status.ERROR
    assert result.summary == "quick preflight did not finish within 0.8s; golive stopped it"
    daemon = int((tmp_path / "daemon.pid").read_text())
    assert "daemon started" in result.evidence["output_tail"]
    assert not _alive(daemon)


async def test_a_daemon_left_behind_is_stopped_and_does_not_hold_the_result(
    tmp_path: Path,
) -> None:
    """A script that exits 0 but leaves a setsid daemon passes at once; the daemon is stopped."""
    argv = [*_script(tmp_path, ESCAPE), "exit"]
    result = await run_preflight(
        argv, workdir=str(tmp_path), timeout=3.0, variant="quick", grace=0.2
    )
    assert result.status is Status.PASS, result.summary
    assert "left 1 process running; stopped it" in result.evidence["output_tail"]
    assert not _alive(int((tmp_path / "daemon.pid").read_text()))


async def test_environment_is_minimal(tmp_path: Path) -> None:
    """The script sees PATH, HOME, LANG and the listed names only, never golive's other ones."""
    golive_env = {
        "PATH": os.environ["PATH"],
        "HOME": "/home/golive",
        "LANG": "C.UTF-8",
        "SLACK_BOT_TOKEN": "xoxb-never-to-the-preflight",
        "DEPLOY_READ_TOKEN": SECRET,
        "UNRELATED": "no",
    }
    env = preflight_environment(golive_env.get, ["DEPLOY_READ_TOKEN", "NOT_SET"])
    argv = _script(tmp_path, "import json, os\nprint(json.dumps(dict(os.environ)))\n")
    result = await run_preflight(argv, workdir=str(tmp_path), timeout=5.0, variant="quick", env=env)
    seen = json.loads(str(result.evidence["output"]))
    assert seen == {k: golive_env[k] for k in ("PATH", "HOME", "LANG", "DEPLOY_READ_TOKEN")}
    assert result.evidence["env"] == ["DEPLOY_READ_TOKEN", "HOME", "LANG", "PATH"]


async def test_output_is_bounded_redacted_and_says_what_was_dropped(tmp_path: Path) -> None:
    """Megabytes of output keep only head and tail, secrets redacted, the drop counted."""
    source = (
        "import sys\n"
        f"print('first line {SECRET}')\n"
        "line = 'y' * 1023 + '\\n'\n"
        "for _ in range(3 * 1024):\n"
        "    sys.stdout.write(line)\n"
        f"print('last line {SECRET}')\n"
        "sys.exit(4)\n"
    )
    result = await run_preflight(
        _script(tmp_path, source),
        workdir=str(tmp_path),
        timeout=10.0,
        variant="quick",
        redactor=Redactor([SECRET]),
    )
    output = str(result.evidence["output"])
    total = result.evidence["output_bytes"]
    dropped = result.evidence["output_dropped"]
    assert result.status is Status.FAIL and result.evidence["exit_code"] == 4
    assert isinstance(total, int) and total > 3 * 1024 * 1024
    assert isinstance(dropped, int) and dropped > total - 2 * 64 * 1024 - 100
    assert len(output) < 2 * 64 * 1024 + 200
    assert output.startswith(f"first line {REDACTED}\n")
    assert f"[… golive dropped {dropped:,} bytes of output here …]" in output
    assert output.rstrip().endswith(f"last line {REDACTED}")
    assert f"last line {REDACTED}" in str(result.evidence["output_tail"])
    assert "MB of output, the middle" in result.summary
    assert "ghp_" not in output


def test_a_cut_never_leaves_part_of_a_secret() -> None:
    """Where the kept head or tail would end inside a secret, the cut moves off it."""
    redactor = Redactor([SECRET])
    secret = SECRET.encode()
    for offset in range(1, len(secret)):
        capture = OutputCapture(32, 32, margin=redactor.longest)
        data = b"h" * (32 - offset) + secret + b"m" * 500 + secret + b"t" * (32 - offset)
        for i in range(0, len(data), 7):  # arrives in small pieces
            capture.add(data[i : i + 7])
        text, dropped = capture.text(redactor)
        assert dropped > 0
        for size in range(4, len(SECRET)):
            assert SECRET[:size] not in text and SECRET[-size:] not in text, (offset, text)


async def test_an_unknown_program_is_an_error(tmp_path: Path) -> None:
    """A preflight argv whose program does not exist is an error naming it, never a pass."""
    result = await run_preflight(
        ["./tools/missing_preflight.py"], workdir=str(tmp_path), timeout=5.0, variant="quick"
    )
    assert result.status is Status.ERROR
    assert result.summary == "could not run ./tools/missing_preflight.py: No such file or directory"
