"""Schemathesis fuzzes every operation of the gateway's OpenAPI description, in process, against the real
services over RabbitMQ, with a valid token of the contract's holder: no request may make a 5xx, and each
answer's status must be one the description lists."""

from __future__ import annotations

import time
import uuid
from datetime import date

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from klients_gateway import create_app
from tests.support.access_helpers import plant_person

APP = create_app()
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP, config=SchemathesisConfig.from_dict({
    "generation": {"max-examples": 12, "database": "none"},
    "suppress-health-check": ["too_slow", "filter_too_much"],
}))
HIGH = "http://eidas.europa.eu/LoA/high"


@pytest.fixture(scope="module")
def holder(stack, metering_sessions, mint):
    """A contract with a meter and its holder (in identity too), with a strong, fresh token."""
    from klients_metering.models import Meter

    with metering_sessions() as session:
        meter = Meter(contract=f"F-{uuid.uuid4().hex[:10].upper()}", serial_number=f"S-{uuid.uuid4().hex[:10]}",
                      meter_type="G4", digits=5, unit="m3", installed_on=date(2020, 1, 1), install_reading=0)
        session.add(meter)
        session.commit()
        contract, serial = meter.contract, meter.serial_number
    person, _ = plant_person(contract, email="fuzz-holder@example.lv")
    token = mint({contract: "owner"}, subject=person, acr=HIGH, auth_time=int(time.time()), ttl=300)
    return {"contract": contract, "meter": serial, "token": token}


@SCHEMA.parametrize()
def test_no_request_makes_a_server_error(case, holder):
    if "contract" in (case.path_parameters or {}):
        case.path_parameters["contract"] = holder["contract"]
    if "meter" in (case.path_parameters or {}):
        case.path_parameters["meter"] = holder["meter"]
    case.call_and_validate(headers={"Authorization": f"Bearer {holder['token']}"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])

