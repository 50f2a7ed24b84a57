"""The staff realm in a real Keycloak: provisioned as code, idempotently; its operator tokens verify with
the shared auth module, and a token from another realm does not."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import pytest

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from tests.support.keycloak_login import code_flow_token
from tests.support.stack import ROOT

sys.path.insert(0, str(ROOT / "deploy" / "keycloak"))
import staff_realm

KEYCLOAK = os.environ["KEYCLOAK_URL"]
SPEC = replace(staff_realm.StaffRealm.from_env(), realm=os.environ["STAFF_REALM"])
OTHER = replace(SPEC, realm="klients-test-other")


@pytest.fixture(scope="module")
def admin():
    client = staff_realm.admin_client(KEYCLOAK)
    staff_realm.provision(client, SPEC)
    staff_realm.provision(client, OTHER)
    return client


def staff_issuer(spec):
    issuer = spec.issuer(KEYCLOAK)
    return TrustedIssuer(issuer=issuer, jwks_uri=f"{issuer}/protocol/openid-connect/certs",
                         audience=staff_realm.OPERATOR_CLIENT, token_types=("JWT",), client_id_claims=("azp",),
                         payload_types=("Bearer",))


def login(spec, username="operator"):
    return code_flow_token(KEYCLOAK, spec.realm, staff_realm.OPERATOR_CLIENT, spec.client_secret,
                           f"{spec.identity_url}/operator/callback", username, spec.demo_password)


def test_operator_token_from_the_staff_realm_verifies(admin):
    token = TokenVerifier([staff_issuer(SPEC)]).verify(login(SPEC)["access_token"])
    assert token.claims["preferred_username"] == "operator"
    assert "operator" in token.roles() and "supervisor" not in token.roles()
    assert token.client_id == staff_realm.OPERATOR_CLIENT


def test_supervisor_has_both_roles(admin):
    token = TokenVerifier([staff_issuer(SPEC)]).verify(login(SPEC, "supervisor")["access_token"])
    assert {"operator", "supervisor"} <= token.roles()


def test_token_from_another_realm_does_not_verify(admin):
    foreign = login(OTHER)["access_token"]
    with pytest.raises(InvalidToken, match="untrusted issuer"):
        TokenVerifier([staff_issuer(SPEC)]).verify(foreign)


def test_id_token_is_not_an_access_token(admin):
    with pytest.raises(InvalidToken):
        TokenVerifier([staff_issuer(SPEC)]).verify(login(SPEC)["id_token"])


def test_wrong_password_is_refused(admin):
    with pytest.raises(PermissionError):
        code_flow_token(KEYCLOAK, SPEC.realm, staff_realm.OPERATOR_CLIENT, SPEC.client_secret,
                        f"{SPEC.identity_url}/operator/callback", "operator", "not-the-password")


def test_provisioning_twice_changes_nothing(admin):
    def snapshot():
        admin.change_current_realm("master")
        realm = admin.get_realm(SPEC.realm)
        admin.change_current_realm(SPEC.realm)
        client = admin.get_client(admin.get_client_id(staff_realm.OPERATOR_CLIENT))
        users = {u["username"]: sorted(r["name"] for r in admin.get_realm_roles_of_user(u["id"]))
                 for u in admin.get_users({})}
        return realm, client, users

    before = snapshot()
    staff_realm.provision(admin, SPEC)
    assert snapshot() == before


def test_provisioning_repairs_a_realm_changed_by_hand(admin):
    admin.update_realm(SPEC.realm, {"bruteForceProtected": False})
    admin.change_current_realm(SPEC.realm)
    client_uuid = admin.get_client_id(staff_realm.OPERATOR_CLIENT)
    admin.update_client(client_uuid, {"directAccessGrantsEnabled": True})
    user_id = admin.get_user_id("operator")
    admin.assign_realm_roles(user_id, [admin.get_realm_role("supervisor")])

    staff_realm.provision(admin, SPEC)

    admin.change_current_realm("master")
    assert admin.get_realm(SPEC.realm)["bruteForceProtected"] is True
    admin.change_current_realm(SPEC.realm)
    assert admin.get_client(client_uuid)["directAccessGrantsEnabled"] is False
    assert "supervisor" not in {r["name"] for r in admin.get_realm_roles_of_user(user_id)}
