"""Rate limits per person and per address on the public API: 429 problem+json with Retry-After; one person
cannot use up another's allowance, and requests without a valid token count against the address."""

from __future__ import annotations

from dataclasses import replace

import pytest

from klients_gateway import create_app
from klients_gateway.settings import Settings
from tests.support.helpers import bearer


@pytest.fixture
def strict(stack):
    app = create_app({"SETTINGS": replace(Settings.from_env(), rate_limit_person="3/minute",
                                          rate_limit_ip="6/minute")})
    yield app.test_client()
    app.extensions["klients_rpc"].close()


def test_a_person_is_limited_and_another_person_is_not(strict, mint):
    first, second = mint({"LVG-100001": "owner"}, subject="p-limit-1"), mint({"LVG-100001": "owner"},
                                                                              subject="p-limit-2")
    assert [strict.get("/api/v1/me", headers=bearer(first)).status_code for _ in range(3)] == [200] * 3
    refused = strict.get("/api/v1/me", headers=bearer(first))
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    assert strict.get("/api/v1/contracts/LVG-100001/balance", headers=bearer(first)).status_code == 429  # all routes
    assert strict.get("/api/v1/me", headers=bearer(second)).status_code == 200


def test_an_address_is_limited_whatever_the_tokens(strict, mint):
    answers = [strict.get("/api/v1/me", headers=bearer(mint({}, subject=f"p-addr-{i}"))).status_code
               for i in range(6)]
    assert answers == [200] * 6
    assert strict.get("/api/v1/me").status_code == 429  # no token: the address's allowance is spent
    assert strict.get("/healthz").status_code == 200  # probes are never limited


def test_instances_on_one_sql_storage_count_together(stack, mint, tmp_path):
    """Two gateway instances whose RATE_LIMIT_STORAGE is the same SQL database share one allowance."""
    settings = replace(Settings.from_env(), rate_limit_person="3/minute", rate_limit_ip="100/minute",
                       rate_limit_storage=f"sqlite:///{tmp_path / 'limits.db'}")
    apps = [create_app({"SETTINGS": settings}) for _ in range(2)]
    try:
        first, second = (app.test_client() for app in apps)
        token = mint({"LVG-100001": "owner"}, subject="p-shared-limit")
        answers = [client.get("/api/v1/me", headers=bearer(token)).status_code
                   for client in (first, second, first, second)]
        assert answers == [200, 200, 200, 429]
    finally:
        for app in apps:
            app.extensions["klients_rpc"].close()
