"""HTTP load with wrk (C, its own event loop: a few percent of a core where Python threads with ``requests``
took most of both), and the servers' CPU per operation from ``/proc``.

``run(url, script, connections, …)`` runs wrk with one of the Lua scripts in ``bench/lua`` (each counts every
answer that is not the expected status, beside wrk's own non-2xx count) and returns requests/s, p50/p99 and
the failures; ``Cpu(roots)`` sums utime+stime (and the reaped children's) of the process trees under the
given pids before and after, so ``cpu.ms_per(operations)`` is the servers' CPU per completed operation. A
measurement with any failed answer raises ``Failed``: it is reported as failed, not as a rate.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lua"
TICKS = os.sysconf("SC_CLK_TCK")


class Failed(RuntimeError):
    """A measurement in which some answer was not a success."""


def ensure_wrk() -> str:
    """Return wrk's path, installing the Debian package (as deploy/*.sh install theirs) when it is missing."""
    if not shutil.which("wrk"):
        subprocess.run(["bash", str(ROOT / "bench" / "setup.sh")], check=True)
    return shutil.which("wrk") or "wrk"


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid → (parent pid, command name, CPU ticks: utime+stime+cutime+cstime) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), name, sum(int(fields[i]) for i in (11, 12, 13, 14)))
    return table


def named(command: str) -> list[int]:
    """Pids of the processes called ``command`` whose parent is not (the roots of such trees)."""
    table = _processes()
    return [pid for pid, (ppid, name, _) in table.items()
            if name == command and table.get(ppid, (0, "", 0))[1] != command]


def postgres() -> list[int]:
    """The PostgreSQL server's root process (its backends and workers are its children)."""
    return [pid for pid in named("postgres")]


def rabbitmq() -> list[int]:
    """The RabbitMQ node (beam.smp and the helpers under it)."""
    return named("beam.smp")


def _tree_ticks(roots: list[int], table: dict[int, tuple[int, str, int]]) -> int:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][2]
        stack.extend(children.get(pid, []))
    return total


class Cpu:
    """CPU seconds used by the process trees under ``parts`` (name → root pids) between start() and stop().

    A process that ends in between takes its ticks with it unless its parent reaped it (PostgreSQL's
    backends, gunicorn's workers are reaped by their parents, whose cutime/cstime then hold them)."""

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.before: dict[str, int] = {}
        self.used: dict[str, float] = {}

    def start(self) -> Cpu:
        table = _processes()
        self.before = {name: _tree_ticks(pids, table) for name, pids in self.parts.items()}
        return self

    def stop(self) -> Cpu:
        table = _processes()
        self.used = {name: (_tree_ticks(pids, table) - self.before[name]) / TICKS
                     for name, pids in self.parts.items()}
        return self

    def ms_per(self, operations: int) -> dict[str, Any]:
        """Total and per-part CPU milliseconds per operation."""
        per = {name: round(1000 * seconds / operations, 3) for name, seconds in self.used.items()}
        return {"server_cpu_ms_per_op": round(sum(per.values()), 3), "cpu_ms_per_op_by_process": per}


_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse(output: str) -> dict[str, Any]:
    """The numbers of wrk's --latency report and of the scripts' BENCH line."""
    result: dict[str, Any] = {}
    for pct, value, unit in _LATENCY.findall(output):
        result[f"p{pct}_ms"] = round(float(value) * _UNIT[unit], 3)
    if match := re.search(r"(\d+) requests in ([\d.]+)(m|s|ms)", output):
        result["requests"] = int(match.group(1))
        result["seconds"] = round(float(match.group(2)) * {"m": 60, "s": 1, "ms": 0.001}[match.group(3)], 2)
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result["requests_per_s"] = round(float(match.group(1)), 1)
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(match.group(1)) if match else 0
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        result["socket_errors"] = sum(int(g) for g in match.groups())
    if match := re.search(r"BENCH ok=(\d+) failed=(\d+) first_failure=(.*)", output):
        result["ok"], result["failed"] = int(match.group(1)), int(match.group(2))
        if result["failed"]:
            result["first_failure"] = match.group(3).strip()
    return result


def run(url: str, script: str, *, connections: int, threads: int | None = None, seconds: float = 10,
        env: dict[str, str] | None = None, cpu: Cpu | None = None, files: dict[str, str] | None = None,
        timeout: str = "10s", until: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run wrk against ``url`` with ``bench/lua/<script>.lua``; ``files`` become temporary files whose paths
    go to the script in the named environment variables; ``until``, polled while wrk runs, ends the run early
    when it returns true. Raises ``Failed`` unless every answer succeeded."""
    threads = threads or min(connections, 2)
    folder = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    extra = {"BENCH_LUA": str(LUA), "BENCH_THREADS": str(threads), **(env or {})}
    for variable, content in (files or {}).items():
        (folder / variable).write_text(content)
        extra[variable] = str(folder / variable)
    command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               f"--timeout={timeout}", "-s", str(LUA / f"{script}.lua"), url]
    if cpu:
        cpu.start()
    own = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **extra})
    if until is not None:  # wrk runs its whole duration even when every thread has stopped: end it when done
        while proc.poll() is None and not until():
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # wrk then stops its threads and reports what it did
    stdout, stderr = proc.communicate(timeout=seconds + 600)
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    elapsed = time.perf_counter() - started
    if cpu:
        cpu.stop()
    shutil.rmtree(folder, ignore_errors=True)
    result = parse(done.stdout)
    result["connections"] = connections
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wrk_cpu_s"] = round(used.ru_utime + used.ru_stime - own.ru_utime - own.ru_stime, 2)
    if cpu and result.get("ok"):
        result.update(cpu.ms_per(result["ok"]))
    result["wall_seconds"] = round(elapsed, 2)
    if done.returncode or "ok" not in result:
        raise Failed(f"wrk exited {done.returncode}: {done.stdout[-800:]} {done.stderr[-800:]}")
    if result["failed"] or result["non_2xx"] or result.get("socket_errors"):
        raise Failed(f"{result['failed']} failed answers, {result['non_2xx']} non-2xx, "
                     f"{result.get('socket_errors', 0)} socket errors (first: {result.get('first_failure')})")
    return result
