"""``make bench``: measure the system on this machine; numbers, not assertions.

Starts the same system the tests use (fresh PostgreSQL databases, identity, the nameko services) plus the
gateway under gunicorn, then measures, in one run:

* the floor: a raw AMQP request/reply round trip with pika (echo consumer on a private queue);
* nameko RPC through the gateway's persistent client (billing.get_contract, token verified in the service);
* the gateway's authorised read ``GET /api/v1/contracts/{c}`` sequentially (p50/p99) and with 32
  concurrent clients (requests/s);
* the balance endpoint under 32 clients with tokens of a person with one grant and of one with 500
  (``bench/gateway.py``);
* the portal's overview page for a logged-in person, sequentially and with 32 clients (``bench/portal.py``);
* metering: reading submissions end to end, consumption history over ten years (``bench/metering.py``);
* identity: code-exchange latency, refresh grants per second beside Keycloak's on the same machine, and the
  Keycloak-fronted mode's full brokered login and portal-realm refreshes (``bench/identity.py``);
* notifications: e-mails per second to the local SMTP server from a burst of events;
* the bus: readings per second from metering's outbox to billing with authenticated events, and the
  authentication's CPU per event beside billing's (``bench/bus.py``);
* billing: the amount-due RPC on a register of ``BENCH_CONTRACTS`` (default 1,000,000) contracts with
  twelve invoices each, and payment initiations per second (``bench/billing.py``).

Results print as a table and are written to ``bench/results/<timestamp>.json``.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support.stack import admin_uri, load_env, mint_token, start_system  # noqa: E402

load_env()
os.environ["RATE_LIMIT_TOKEN"] = "1000000/minute"  # measure the server, not its abuse protection
os.environ["RATE_LIMIT_IP"] = os.environ["RATE_LIMIT_PERSON"] = "100000000/minute"
os.environ["IDENTITY_WORKERS"] = "2"  # one per core, as in production

import pika  # noqa: E402
import requests  # noqa: E402

from klients_common.rpc import RpcClient  # noqa: E402

SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "2000"))
CONCURRENT_REQUESTS = int(os.environ.get("BENCH_CONCURRENT", "6000"))
CLIENTS = 32


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

    samples = timed(call, n)
    conn.close()
    stop.set()
    thread.join()
    return percentiles(samples)


def main() -> None:
    """Run every benchmark and report."""
    rpc = RpcClient(os.environ["AMQP_URI"], timeout=10)
    stack = start_system(rpc)
    try:
        gateway = "http://" + os.environ["GATEWAY_BIND"]

        token = mint_token({"LVG-100001": "owner"}, subject="bench-person")
        results: dict[str, object] = {}
        results["raw_amqp_round_trip"] = raw_amqp_round_trip(SEQUENTIAL)
        context = {"authorization": f"Bearer {token}"}
        results["nameko_rpc_persistent_client"] = percentiles(
            timed(lambda: rpc.call("billing", "get_contract", "LVG-100001", context=context), SEQUENTIAL))

        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{gateway}/api/v1/contracts/LVG-100001"

        def read(s: requests.Session = session) -> None:
            response = s.get(url, headers=headers, timeout=10)
            if response.status_code != 200:
                raise RuntimeError(f"gateway answered {response.status_code}")

        results["gateway_authorised_read_sequential"] = percentiles(timed(read, SEQUENTIAL))

        import gateway as gateway_bench

        results["gateway_authorised_read_32_clients"] = gateway_bench.load(url, token, CONCURRENT_REQUESTS, percentiles)

        for name, numbers in gateway_bench.balance(gateway, percentiles).items():
            results[f"balance_32_clients_{name}"] = numbers

        import portal

        for name, numbers in portal.overview(percentiles, timed, min(SEQUENTIAL, 500)).items():
            results[f"portal_overview_{name}"] = numbers

        import metering

        results["reading_submissions_32_clients_end_to_end"] = metering.submissions_end_to_end(gateway, percentiles)
        results["consumption_history_10_years_by_month"] = metering.history_ten_years(
            gateway, percentiles, timed, min(SEQUENTIAL, 300))

        import identity

        results["identity_code_exchange"] = identity.code_exchange_latency(percentiles)
        results["identity_refresh_grants_16_clients"] = identity.identity_refresh()
        results["keycloak_refresh_grants_16_clients"] = identity.keycloak_refresh()
        fronted = identity.keycloak_fronted(percentiles, stack)
        results["keycloak_fronted_full_brokered_login"] = fronted["brokered_login"]
        results["keycloak_fronted_portal_refresh_16_clients"] = fronted["refresh"]

        import notifications

        results["notification_mails_from_a_burst"] = notifications.burst()

        import bus

        results["readings_through_the_bus_authenticated"] = bus.readings_flow(stack.procs["billing"].pid)

        import billing

        results["billing_register_load"] = billing.load_register()
        results["amount_due_rpc_on_big_register"] = billing.amount_due_latency(rpc, percentiles, timed, SEQUENTIAL)
        results["payment_initiations_32_clients"] = billing.payment_initiations(gateway, percentiles)
    finally:
        rpc.close()
        stack.stop_all()

    machine = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "kernel": platform.release(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps({"machine": machine, **results}, indent=2))
    print(f"\nMachine: {machine}\n")
    print(f"| {'measurement':45} | p50 ms | p99 ms | per s |")
    print(f"|{'-' * 47}|--------|--------|-------|")
    for name, value in results.items():
        row = value if isinstance(value, dict) else {}
        rate = row.get("requests_per_s", row.get("end_to_end_per_s", ""))
        print(f"| {name:45} | {row.get('p50_ms', ''):>6} | {row.get('p99_ms', ''):>6} | {rate:>5} |")
        extra = {k: v for k, v in row.items() if k not in ("p50_ms", "p99_ms", "mean_ms", "n", "requests_per_s")}
        if extra:
            print(f"|   {extra}")


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
