"""The client register: import all or nothing with errors by line, holder history, identity's RPCs."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from klients_billing.models import Contract, ContractHolder
from klients_common.errors import Forbidden
from tests.support.stack import HEADER, random_personal_code, run_import


def numbers():
    tag = uuid.uuid4().hex[:8].upper()
    return f"R-{tag}-1", f"R-{tag}-2", f"R-{tag}-3"


def test_import_creates_contracts_and_a_new_holder_keeps_the_history(tmp_path, billing_sessions):
    a, b, _ = numbers()
    first, second, new = random_personal_code(), random_personal_code(), random_personal_code(new_format=True)
    done = run_import(tmp_path, HEADER + f"{a},Ilze Liepa,{first},\"Skolas iela 1, Rīga\",ilze@example.lv,active,"
                                         f"2021-05-01,\n{b},Jānis Bērziņš,{second},Ielas 2,,active,2022-01-01,\n")
    assert done.returncode == 0, done.stderr
    assert "2 contracts created" in done.stdout
    moved = run_import(tmp_path, json.dumps([{
        "number": a, "holder_name": "Pēteris Liepa", "holder_personal_code": new,
        "supply_address": "Skolas iela 1, Rīga", "email": "peteris@example.lv", "status": "active",
        "start_date": "2021-05-01"}]), suffix=".json")
    assert moved.returncode == 0, moved.stderr
    with billing_sessions() as session:
        contract = session.scalar(select(Contract).where(Contract.number == a))
        holders = session.scalars(select(ContractHolder).where(ContractHolder.contract_id == contract.id)
                                  .order_by(ContractHolder.since)).all()
        assert (contract.holder_name, contract.holder_personal_code) == ("Pēteris Liepa", new)
        assert [(h.holder_personal_code, h.until is None) for h in holders] == [
            (first, False), (new, True)]


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(tmp_path, billing_sessions):
    a, b, c = numbers()
    text = (HEADER + f"{a},Good Row,{random_personal_code()},Iela 1,ok@example.lv,active,2021-01-01,\n"
            f"{b},Bad Code,161175-19998,Iela 2,,active,2021-01-01,\n"
            f"{c},Bad Date,010180-15097,Iela 3,not-an-email,active,2021-13-01,\n"
            f"{a},Repeat,010180-15097,Iela 4,,active,2021-01-01,\n")
    done = run_import(tmp_path, text)
    assert done.returncode == 2
    assert "line 3: holder_personal_code" in done.stderr
    assert "line 4: email" in done.stderr and "line 4: start_date" in done.stderr
    assert "line 5: number: repeats line 2" in done.stderr
    assert "nothing was imported" in done.stderr
    with billing_sessions() as session:
        assert session.scalar(select(Contract).where(Contract.number.in_([a, b, c]))) is None


@pytest.mark.parametrize(("text", "message"), [
    ("number,holder_name\nX,Y\n", "header lacks"),
    ("[1, 2]", "list of objects"),
    ("{not json", "not JSON"),
])
def test_unreadable_files_are_refused(tmp_path, text, message):
    done = run_import(tmp_path, text, suffix=".json" if text[:1] in "[{" else ".csv")
    assert done.returncode == 2 and message in done.stderr


def test_identity_asks_which_contracts_a_person_holds_with_a_service_token(rpc, mint, new_contract):
    """Only identity's broker user with a service token reads the register: the same token from another
    component's connection (the gateway's, which a person's requests reach) is refused, and so is a person's."""
    from klients_common.rpc import RpcClient
    from tests.support.stack import bus_uri, mint_token

    code = random_personal_code()
    mine = new_contract(personal_code=code, email="ilze@example.lv")
    service_token = mint_token({}, subject="service:identity", scope="register:read", client_id="klients-identity")
    service = {"authorization": f"Bearer {service_token}"}
    identity = RpcClient(bus_uri("identity"), timeout=5)
    try:
        held = identity.call("billing", "contracts_of", code.replace("-", ""), context=service)
        assert mine.number in [c["number"] for c in held]
        assert identity.call("billing", "email_on_file", mine.number, context=service) == "ilze@example.lv"
        person = mint({mine.number: "owner"})
        with pytest.raises(Forbidden):
            identity.call("billing", "contracts_of", code, context={"authorization": f"Bearer {person}"})
    finally:
        identity.close()
    for method, argument in (("contracts_of", code), ("email_on_file", mine.number), ("register_entry", mine.number)):
        with pytest.raises(Forbidden):
            rpc.call("billing", method, argument, context=service)  # the gateway's connection
