"""``make bench``: measure the system on this machine; numbers, not assertions.

Starts the same system the tests use (fresh PostgreSQL databases, identity, the nameko services, the gateway
under gunicorn) and measures it with wrk (``bench/wrk.py``, Lua scripts in ``bench/lua``): requests/s, p50/p99
and the servers' CPU per operation from ``/proc`` (the server processes, PostgreSQL, and RabbitMQ where it is
in the path). A measurement in which any answer was not a success is reported as failed, not as a rate.
Python drives only what needs logic wrk has not (logins) and the sequential latencies. Groups, all by
default, a few with ``BENCH_ONLY=identity,keycloak`` (the bench holds the machine: keep runs short):

* ``floor``: a raw AMQP request/reply round trip with pika, and nameko RPC through the persistent client;
* ``gateway``: the balance with 32 connections for tokens of one grant, of 500 (first 12 carried) and
  contract-scoped, and the contract read (``bench/gateway.py``);
* ``portal``: the overview page (``bench/portal.py``);
* ``readings``: reading submissions end to end, and consumption history (``bench/metering.py``);
* ``identity``: code-exchange latency and refresh grants, 16 chains (``bench/identity.py``);
* ``keycloak``: Keycloak's refresh grants on PostgreSQL, a Keycloak of the bench's own
  (``bench/keycloak_pg.py``), same chains and signing algorithm (``BENCH_SIGNING_ALG``, default RS256);
* ``fronted``: the Keycloak-fronted brokered login and portal-realm refreshes (the shared Keycloak);
* ``notifications``, ``bus``, ``billing``: e-mails from a burst, readings through the bus, the big register.

``BENCH_DATABASE=sqlite`` runs the system on the embedded default instead and measures 16 refresh chains with
32 balance readers at once (``bench/sqlite.py``). ``BENCH_PROFILE=1`` records py-spy flame graphs of the
servers during the gateway, readings and identity measurements into ``bench/results/*.svg`` (its figures carry
py-spy's cost, so it writes no summary). Results print as a table and go to ``bench/results/<time>.json``;
the headline figures to ``bench/summary.json`` (committed with docs/performance.md).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from system import admin_uri, load_env, mint_token, start_system  # noqa: E402

SQLITE = os.environ.get("BENCH_DATABASE") == "sqlite"
if SQLITE:  # the embedded default, as `make run` has it: each service its SQLite file (WAL, db.SQLITE_PRAGMAS)
    _folder = ROOT / "var" / "bench" / "sqlite"
    _folder.mkdir(parents=True, exist_ok=True)
    for _service in ("identity", "billing", "metering", "notifications"):
        os.environ[f"{_service.upper()}_DATABASE_URL"] = f"sqlite:///{_folder}/{_service}.db"
load_env()
os.environ["RATE_LIMIT_TOKEN"] = "1000000/minute"  # measure the server, not its abuse protection
os.environ["RATE_LIMIT_IP"] = os.environ["RATE_LIMIT_PERSON"] = "100000000/minute"
os.environ["IDENTITY_WORKERS"] = "2"  # one per core, as in production

import pika  # noqa: E402

from klients_common.rpc import RpcClient  # noqa: E402

SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "2000"))


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50/p99/mean in milliseconds."""
    ordered = sorted(samples)
    return {"p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3), "n": len(ordered)}


def timed(call, n: int) -> list[float]:
    """Return the durations of ``n`` sequential calls, after 50 warm-up calls."""
    for _ in range(50):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def raw_amqp_round_trip(n: int) -> dict[str, float]:
    """The floor: publish a request, an echo consumer replies, wait for the reply (pika, same vhost; as the
    administrator: no component may publish straight into a queue)."""
    params = pika.URLParameters(admin_uri())
    queue = f"bench-echo-{uuid.uuid4()}"
    ready = threading.Event()
    stop = threading.Event()

    def echo() -> None:
        conn = pika.BlockingConnection(params)
        channel = conn.channel()
        channel.queue_declare(queue, auto_delete=True)

        def on_request(ch, method, props, body):
            ch.basic_publish("", props.reply_to, body,
                             pika.BasicProperties(correlation_id=props.correlation_id))
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(queue, on_request)
        ready.set()
        while not stop.is_set():
            conn.process_data_events(time_limit=0.2)
        conn.close()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    ready.wait(10)
    conn = pika.BlockingConnection(params)
    channel = conn.channel()
    reply_queue = channel.queue_declare("", exclusive=True).method.queue
    replies: list[bytes] = []
    channel.basic_consume(reply_queue, lambda ch, m, p, body: replies.append(body), auto_ack=True)

    def call() -> None:
        replies.clear()
        channel.basic_publish("", queue, b'{"args": [], "kwargs": {}}',
                              pika.BasicProperties(reply_to=reply_queue, correlation_id=str(uuid.uuid4())))
        while not replies:
            conn.process_data_events(time_limit=1)

    import wrk

    for _ in range(50):
        call()
    broker = wrk.Cpu({"rabbitmq": wrk.rabbitmq()}).start()
    own = time.process_time()  # the caller and the echo consumer, both in this process
    samples = timed(call, n)
    clients = time.process_time() - own
    broker.stop()
    conn.close()
    stop.set()
    thread.join()
    return {**percentiles(samples), "rabbitmq_cpu_ms_per_op": round(1000 * broker.used["rabbitmq"] / (n + 50), 3),
            "clients_cpu_ms_per_op": round(1000 * clients / (n + 50), 3)}


def only(group: str) -> bool:
    """Whether ``group`` is measured in this run (``BENCH_ONLY=identity,gateway``; all when unset)."""
    chosen = os.environ.get("BENCH_ONLY", "")
    return not chosen or group in chosen.split(",")


def main() -> None:
    """Run the chosen benchmarks; report, write bench/results/<time>.json and bench/summary.json."""
    import wrk

    wrk.ensure_wrk()
    rpc = RpcClient(os.environ["AMQP_URI"], timeout=10)
    stack = start_system(rpc)
    results: dict[str, object] = {}
    failures: dict[str, str] = {}

    def measure(name: str, call: Any) -> None:
        try:
            results[name] = call()
        except (wrk.Failed, RuntimeError) as exc:  # failed answers: reported as failed, not as a rate
            failures[name] = str(exc)
            print(f"FAILED {name}: {exc}", file=sys.stderr)

    try:
        gateway = "http://" + os.environ["GATEWAY_BIND"]
        profiler = Profiler(stack) if os.environ.get("BENCH_PROFILE") else None
        token = mint_token({"LVG-100001": "owner"}, subject="bench-person", ttl=900)
        if SQLITE:
            import sqlite

            measure("sqlite_16_refresh_chains_and_32_readers", lambda: sqlite.together(stack, gateway, token))
        if only("floor"):
            results["raw_amqp_round_trip"] = raw_amqp_round_trip(SEQUENTIAL)
            context = {"authorization": f"Bearer {token}"}
            results["nameko_rpc_persistent_client"] = percentiles(
                timed(lambda: rpc.call("billing", "get_contract", "LVG-100001", context=context), SEQUENTIAL))
        if only("gateway"):
            import gateway as gateway_bench

            cpu = gateway_bench.server_cpu(stack, "billing")
            with profiling(profiler, "gateway_balance", "gateway", "billing"):
                for name, numbers in gateway_bench.balance(gateway, stack).items():
                    results[f"balance_32_connections_{name}"] = numbers
            measure("gateway_authorised_read_32_connections", lambda: gateway_bench.read(
                f"{gateway}/api/v1/contracts/LVG-100001", token, cpu))
        if only("portal"):
            import portal

            for name, numbers in portal.overview(percentiles, timed, stack, min(SEQUENTIAL, 500)).items():
                results[f"portal_overview_{name}"] = numbers
        if only("readings"):
            import metering

            with profiling(profiler, "readings", "gateway", "metering", "billing"):
                measure("reading_submissions_32_connections_end_to_end",
                        lambda: metering.submissions_end_to_end(gateway, stack))
            results["consumption_history_10_years_by_month"] = metering.history_ten_years(
                gateway, percentiles, timed, min(SEQUENTIAL, 300))
        if only("identity"):
            import identity

            codes = identity.collect_codes()
            with profiling(profiler, "code_exchange", "identity"):
                measure("identity_code_exchange", lambda: identity.code_exchange(codes))
            with profiling(profiler, "identity_refresh", "identity"):
                measure("identity_refresh_grants_16_chains", lambda: identity.identity_refresh(stack))
        if only("keycloak"):
            import identity

            measure("keycloak_refresh_grants_16_chains", identity.keycloak_refresh)
        if only("fronted"):
            import identity

            fronted = identity.keycloak_fronted(percentiles, stack)
            results["keycloak_fronted_full_brokered_login"] = fronted["brokered_login"]
            results["keycloak_fronted_portal_refresh_16_chains"] = fronted["refresh"]
        if only("notifications"):
            import notifications

            results["notification_mails_from_a_burst"] = notifications.burst()
        if only("bus"):
            import bus

            results["readings_through_the_bus_authenticated"] = bus.readings_flow(stack.procs["billing"].pid)
        if only("billing"):
            import billing

            results["billing_register_load"] = billing.load_register()
            results["amount_due_rpc_on_big_register"] = billing.amount_due_latency(rpc, percentiles, timed,
                                                                                   SEQUENTIAL)
            results["payment_initiations_32_clients"] = billing.payment_initiations(gateway, percentiles)
    finally:
        rpc.close()
        stack.stop_all()

    machine = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    if SQLITE and "sqlite_16_refresh_chains_and_32_readers" in results:
        measured = results["sqlite_16_refresh_chains_and_32_readers"]
        write_summary({"sqlite": measured, "sqlite_paced": measured["paced"]}, failures, machine,
                      keys=SQLITE_KEYS)
    (out / f"{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({"machine": machine, **results, "failed": failures}, indent=2))
    if profiler is None and not SQLITE:  # a profiled run's figures carry py-spy's cost: flame graphs only
        write_summary(results, failures, machine)
    print(f"\nMachine: {machine}\n")
    print(f"| {'measurement':50} | p50 ms | p99 ms | per s | CPU ms/op |")
    print(f"|{'-' * 52}|--------|--------|-------|-----------|")
    for name, value in results.items():
        row = value if isinstance(value, dict) else {}
        rate = row.get("end_to_end_per_s", row.get("requests_per_s", ""))
        print(f"| {name:50} | {row.get('p50_ms', ''):>6} | {row.get('p99_ms', ''):>6} | {rate:>5} | "
              f"{row.get('server_cpu_ms_per_op', ''):>9} |")
        shown = ("p50_ms", "p99_ms", "mean_ms", "n", "requests_per_s", "server_cpu_ms_per_op")
        if extra := {k: v for k, v in row.items() if k not in shown}:
            print(f"|   {extra}")
    for name, why in failures.items():
        print(f"| {name:50} | FAILED: {why}")
    if failures:
        sys.exit(1)


SUMMARY_KEYS = {  # summary key: (measurement, figure)
    "identity_refresh_cpu_ms": ("identity_refresh_grants_16_chains", "server_cpu_ms_per_op"),
    "keycloak_refresh_cpu_ms": ("keycloak_refresh_grants_16_chains", "server_cpu_ms_per_op"),
    "identity_refresh_per_s": ("identity_refresh_grants_16_chains", "requests_per_s"),
    "keycloak_refresh_per_s": ("keycloak_refresh_grants_16_chains", "requests_per_s"),
    "identity_refresh_p99_ms": ("identity_refresh_grants_16_chains", "p99_ms"),
    "keycloak_refresh_p99_ms": ("keycloak_refresh_grants_16_chains", "p99_ms"),
    "gateway_balance_per_s": ("balance_32_connections_one_grant", "requests_per_s"),
    "gateway_balance_p50_ms": ("balance_32_connections_one_grant", "p50_ms"),
    "gateway_balance_p99_ms": ("balance_32_connections_one_grant", "p99_ms"),
    "gateway_balance_cpu_ms": ("balance_32_connections_one_grant", "server_cpu_ms_per_op"),
    "raw_amqp_round_trip_p50_ms": ("raw_amqp_round_trip", "p50_ms"),
    "raw_amqp_round_trip_rabbitmq_cpu_ms": ("raw_amqp_round_trip", "rabbitmq_cpu_ms_per_op"),
    "raw_amqp_round_trip_clients_cpu_ms": ("raw_amqp_round_trip", "clients_cpu_ms_per_op"),
    "readings_per_s": ("reading_submissions_32_connections_end_to_end", "end_to_end_per_s"),
    "readings_cpu_ms": ("reading_submissions_32_connections_end_to_end", "server_cpu_ms_per_op"),
    "code_exchange_p50_ms": ("identity_code_exchange", "p50_ms"),
    "token_500_grants_bytes": ("balance_32_connections_500_grants_plain_token_first_12", "token_bytes"),
}


SQLITE_KEYS = {
    "sqlite_refresh_per_s": ("sqlite", "refresh_per_s"), "sqlite_refresh_p99_ms": ("sqlite", "refresh_p99_ms"),
    "sqlite_readers_per_s": ("sqlite", "readers_per_s"), "sqlite_readers_p99_ms": ("sqlite", "readers_p99_ms"),
    "sqlite_failed_answers": ("sqlite", "failed"),
    "sqlite_paced_refresh_per_s": ("sqlite_paced", "refresh_per_s"),
    "sqlite_paced_refresh_p99_ms": ("sqlite_paced", "refresh_p99_ms"),
    "sqlite_paced_readers_per_s": ("sqlite_paced", "readers_per_s"),
    "sqlite_paced_readers_p99_ms": ("sqlite_paced", "readers_p99_ms"),
    "sqlite_paced_failed_answers": ("sqlite_paced", "failed"),
}


def write_summary(results: dict[str, Any], failures: dict[str, str], machine: dict[str, Any],
                  keys: dict[str, tuple[str, str]] = SUMMARY_KEYS) -> None:
    """Merge this run's headline figures into bench/summary.json (a subset run keeps the others' figures,
    each with the time it was measured)."""
    path = ROOT / "bench" / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    measured_at = summary.setdefault("measured_at", {})
    run_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    signing = (results.get("identity_refresh_grants_16_chains", {}).get("signing_alg")
               or results.get("keycloak_refresh_grants_16_chains", {}).get("signing_alg"))
    for key, (measurement, figure) in keys.items():
        if signing and signing != "RS256" and measurement.startswith(("identity_", "keycloak_")):
            key = f"{key}_{signing.lower()}"  # the headline figures stay RS256's, the issue's comparison
        if measurement in failures:
            summary[key], measured_at[key] = "failed", run_at
        elif figure in results.get(measurement, {}):
            summary[key], measured_at[key] = results[measurement][figure], run_at
    summary.update({
        "load_generator": "wrk 4.1 (Lua scripts in bench/lua; one connection per refresh chain); "
                          "Python only for logins and sequential latency",
        "machine": f"{machine['cpu']}, {machine['cores']} cores shared by load generator and servers, "
                   f"Python {machine['python']}",
        "run_at": run_at,
        **({"signing_alg": "RS256"} if signing else {}),  # of the headline figures; others carry a suffix
    })
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


class Profiler:
    """py-spy flame graphs (SVG, ``bench/results/<name>-<process>.svg``) of the named processes while a
    measurement runs (``BENCH_PROFILE=1``; py-spy needs ptrace, so root)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.running: list[Any] = []

    def start(self, name: str, processes: tuple[str, ...]) -> None:
        import shutil
        import subprocess

        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        for process in processes:
            self.running.append(subprocess.Popen(
                [spy, "record", "--subprocesses", "--rate", "200", "--format", "flamegraph",
                 "--pid", str(self.stack.procs[process].pid), "--output", str(out / f"{name}-{process}.svg")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)

    def stop(self) -> None:
        import signal

        for proc in self.running:
            proc.send_signal(signal.SIGINT)  # py-spy writes its SVG on SIGINT
        for proc in self.running:
            proc.wait(timeout=60)
        self.running = []


@contextmanager
def profiling(profiler: Profiler | None, name: str, *processes: str) -> Iterator[None]:
    """Record ``processes`` with py-spy while the block runs, when profiling is on."""
    if profiler is None:
        yield
        return
    profiler.start(name, processes)
    try:
        yield
    finally:
        profiler.stop()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
