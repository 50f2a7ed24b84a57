"""The gateway's persistent RPC client against real RabbitMQ and real services."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from klients_common.errors import NotFound
from klients_common.rpc import RemoteError, RpcClient, ServiceUnavailable


def test_unknown_service_fails_at_once(rpc):
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="nosuchservice"):
        rpc.call("nosuchservice", "ping", timeout=5)
    assert time.monotonic() - started < 2


def test_unreachable_broker_is_service_unavailable():
    client = RpcClient("amqp://guest:guest@127.0.0.1:1/", timeout=1)
    try:
        with pytest.raises(ServiceUnavailable):
            client.call("billing", "ping")
    finally:
        client.close()


def test_concurrent_callers_each_get_their_own_answer(rpc, mint):
    """32 threads share one client; every reply reaches the caller that asked (correlation ids)."""
    contracts = ["LVG-100001", "LVG-100002", "LVG-100003", "LVG-100004"]
    tokens = {c: mint({c: "owner"}) for c in contracts}

    def ask(i):
        contract = contracts[i % 4]
        other = contracts[(i + 1) % 4]
        auth = {"authorization": f"Bearer {tokens[contract]}"}
        mine = rpc.call("billing", "get_contract", contract, context=auth)["number"]
        try:
            rpc.call("billing", "get_contract", other, context=auth)
            leaked = True
        except NotFound:
            leaked = False
        return contract, mine, leaked

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(ask, range(200)))
    assert all(contract == mine and not leaked for contract, mine, leaked in results)


def test_client_survives_a_broker_connection_reset(rpc, mint):
    """Connections closed under the client (as rabbitmqctl close_all_connections does) are reopened."""
    import subprocess

    vhost = os.environ["AMQP_URI"].rsplit("/", 1)[-1]
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test reset"],
                   check=True, capture_output=True)
    token = mint({"LVG-100001": "owner"})
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = rpc.call("billing", "get_contract", "LVG-100001", context={"authorization": f"Bearer {token}"},
                              timeout=2)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert answer["number"] == "LVG-100001"


def test_a_call_with_the_wrong_arguments_is_refused_each_time_and_the_right_one_answered(rpc, mint):
    """The entrypoint remembers per shape of call whether the arguments bind: a wrong shape is refused every
    time (nameko's IncorrectSignature), and the right shape of the same method still answers."""
    auth = {"authorization": f"Bearer {mint({'LVG-100001': 'owner', 'LVG-999999': 'owner'})}"}
    for _ in range(2):
        with pytest.raises(RemoteError, match="IncorrectSignature"):
            rpc.call("billing", "get_balance", context=auth)
        with pytest.raises(RemoteError, match="IncorrectSignature"):
            rpc.call("billing", "get_balance", "LVG-100001", extra=1, context=auth)
        assert rpc.call("billing", "get_balance", "LVG-100001", context=auth)["contract"] == "LVG-100001"
        with pytest.raises(NotFound, match="LVG-999999"):  # granted, but not in the register
            rpc.call("billing", "get_balance", contract="LVG-999999", context=auth)
