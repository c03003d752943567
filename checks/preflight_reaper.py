"""Run one command so that nothing it starts can outlive it: golive's preflight supervisor.

    python -I -S preflight_reaper.py <grace seconds> <executable> <NAME,NAME…> -- <argv...>

The command gets exactly the named variables of this process's environment (the interpreter
may add some of its own, such as LC_CTYPE, which are not passed on).

Why a supervisor process: killing the preflight's process group misses any descendant that
called setsid() (or setpgid()) to leave the group, and once such a process's parent has exited
it is re-parented to init and nothing remembers it came from the preflight. cgroups would hold
them, but creating one needs root or a delegated hierarchy. What any unprivileged process on
Linux (3.4+) can do is become a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER): every orphaned
descendant is then re-parented to it instead of init, so the whole tree stays reachable through
/proc's parent links from this one process, whatever sessions or groups it makes.

This script (standard library only, started by path with `-I -S` so it depends on nothing
installed) becomes a subreaper, spawns the command, and reaps whatever is re-parented to it.
When the command exits, or golive sends SIGTERM (the timeout), or golive itself dies (parent
death signal), it stops every descendant: SIGTERM, `grace` seconds, then SIGSTOP and SIGKILL in
rounds until none is left (a stopped process cannot fork, so the set stops growing). It exits
with the command's status (128 + n for a signal) once every descendant is gone, so the output
pipe closes when the tree is gone and not before.

A process that escapes this would need privileges (a new PID namespace as root, ptrace of
another user's process) or to be a descendant that makes *itself* a subreaper; even then it
remains our descendant while its ancestors live, and is stopped with them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
NOT_RUN = 127


class Stop(Exception):
    """golive asked us to stop the tree (SIGTERM), or golive is gone."""


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _live_descendants(root: int) -> list[int]:
    """Every live (not zombie) process below `root`, found through /proc parent links."""
    children: dict[int, list[int]] = {}
    state: dict[int, bytes] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs (not Linux): golive falls back to killing the process group
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        pid = int(entry)
        state[pid] = fields[0]
        children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [pid for pid in found if state.get(pid) not in (b"Z", b"X")]


def _reap(main: int, statuses: dict[int, int]) -> None:
    """Collect every exited child without blocking; remember the main command's status."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == main:
            statuses[main] = status


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_tree(grace: float, main: int, statuses: dict[int, int]) -> int:
    """Stop every descendant (TERM, grace, then STOP+KILL rounds); how many there were."""
    me = os.getpid()
    first = _live_descendants(me)
    _signal_all(first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(main, statuses)
        if not _live_descendants(me):
            break
        time.sleep(0.02)
    for _ in range(500):
        _reap(main, statuses)
        left = _live_descendants(me)
        if not left:
            break
        _signal_all(left, signal.SIGSTOP)
        _signal_all(_live_descendants(me), signal.SIGKILL)
        time.sleep(0.01)
    _reap(main, statuses)
    return len(first)


def _exit_code(status: int | None) -> int:
    if status is None:
        return 128 + signal.SIGKILL
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _stop(signum: int, frame: object) -> None:
    raise Stop


def main(args: list[str]) -> int:
    """Spawn the command, wait for it, then make sure nothing it started is left."""
    grace, path, command = float(args[0]), args[1], args[4:]
    environ = {n: os.environ[n] for n in args[2].split(",") if n and n in os.environ}
    parent = os.getppid()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _stop)
    statuses: dict[int, int] = {}
    main_pid = -1
    try:
        if os.getppid() != parent:
            raise Stop  # golive died before the parent death signal was armed
        try:
            main_pid = os.posix_spawn(
                path,
                command,
                environ,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT),
            )
        except OSError as exc:
            print(f"golive: could not run {command[0]}: {exc.strerror or exc}", flush=True)
            return NOT_RUN
        while main_pid not in statuses:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == main_pid:
                statuses[pid] = status
    except Stop:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stop_tree(grace, main_pid, statuses)
        return _exit_code(statuses.get(main_pid))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    left = stop_tree(grace, main_pid, statuses)
    if left:
        print(
            f"golive: the preflight left {left} process{'es' if left > 1 else ''} running; "
            f"stopped {'them' if left > 1 else 'it'}",
            flush=True,
        )
    return _exit_code(statuses.get(main_pid))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
