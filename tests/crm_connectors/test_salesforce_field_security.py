"""Field-level security of the fields apply creates on Salesforce. A real org grants a field created through the
Tooling API to nobody, so the sandbox hides it from describe and SOQL until a permission set assigned to the
connected user grants read; the connector grants it through GTM Ops' permission set. What the org shows is read with a
plain simple-salesforce client, never through the connector under test."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm_connectors.base import CrmQueryError
from crm_sandbox import SalesforceSandbox
from crm_sandbox.profiles import variant
from tests.crm_connectors.connectors import connector

SIZE = 200
LABELS = ["No Budget", "Timing", "Not a Fit"]
TARGET = {"type": "picklist", "values": LABELS}
FIELD = "SELECT Id FROM CustomField WHERE DeveloperName = '{}'"
NO_GRANTING = variant(
    "demo", "no-granting", withheld_permissions=frozenset({"PermissionsManageProfilesPermissionsets"})
)


@pytest.fixture(scope="module")
def sb():
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def raw(sb):
    return sb.client()


@pytest.fixture
def sf(sb):
    with connector(sb) as c:
        yield c


def create_field(obj: str, field: str) -> dict:
    return {
        "id": "op-1",
        "kind": "create_field",
        "object": obj,
        "field": field,
        "value": None,
        "pipeline": None,
        "label": field.removesuffix("__c").replace("_", " "),
    }


def described(raw, sobject: str, field: str) -> list[str] | None:
    """The active values describe lists for the field; None when describe leaves the field out."""
    found = [f for f in raw.restful(f"sobjects/{sobject}/describe")["fields"] if f["name"] == field]
    return [v["label"] for v in found[0]["picklistValues"] if v["active"]] if found else None


def grants(raw, full_name: str) -> list[dict]:
    soql = "SELECT ParentId, SobjectType, PermissionsRead, PermissionsEdit FROM FieldPermissions WHERE Field = '{}'"
    return raw.query(soql.format(full_name))["records"]


def permission_sets(raw) -> list[dict]:
    return raw.query("SELECT Id, Label FROM PermissionSet WHERE Name = 'GTM_Ops_Lifecycle_Fields'")["records"]


def test_a_field_created_without_a_grant_is_invisible_until_apply_grants_it(raw, sf):
    metadata = {
        "label": "Churn Reason",
        "type": "Picklist",
        "valueSet": {"valueSetDefinition": {"value": [{"valueName": v, "label": v} for v in LABELS]}},
    }
    raw.toolingexecute(
        "sobjects/CustomField", method="POST", data={"FullName": "Contact.Churn_Reason__c", "Metadata": metadata}
    )

    assert raw.toolingexecute("query/", params={"q": FIELD.format("Churn_Reason")})["totalSize"] == 1  # it is there
    assert described(raw, "Contact", "Churn_Reason__c") is None  # and nobody may read it
    with pytest.raises(SalesforceMalformedRequest) as refused:
        raw.query("SELECT Churn_Reason__c FROM Contact LIMIT 1")
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"

    # as a resumed apply finds it after a failure between creating and granting: there, but none of it readable
    op = create_field("contact", "Churn_Reason__c")
    assert sf.config_state(op) == {"type": "picklist", "values": []}
    sf.write_config(op, TARGET)
    assert described(raw, "Contact", "Churn_Reason__c") == LABELS
    assert sf.config_state(op) == TARGET


def test_apply_creates_a_readable_field_granted_once_and_undo_takes_the_grant_with_it(sb, raw, sf):
    op = create_field("lead", "Drop_Off_Reason__c")
    assert sf.config_state(op) is None

    sf.write_config(op, TARGET)
    assert described(raw, "Lead", "Drop_Off_Reason__c") == LABELS
    assert raw.query("SELECT Id, Drop_Off_Reason__c FROM Lead LIMIT 5")["totalSize"] == 5
    [permission_set] = permission_sets(raw)
    assert permission_set["Label"] == "GTM Ops lifecycle fields"
    assert [
        (g["ParentId"], g["SobjectType"], g["PermissionsRead"], g["PermissionsEdit"])
        for g in grants(raw, "Lead.Drop_Off_Reason__c")
    ] == [(permission_set["Id"], "Lead", True, True)]
    user = raw.restful("")["identity"].rsplit("/", 1)[-1]
    assigned = raw.query(
        f"SELECT AssigneeId FROM PermissionSetAssignment WHERE PermissionSetId = '{permission_set['Id']}'"
    )
    assert [a["AssigneeId"] for a in assigned["records"]] == [user]

    posts = sb.by_method["POST"]
    sf.write_config(op, TARGET)  # applied again: everything is found, nothing inserted
    assert sb.by_method["POST"] == posts
    assert len(grants(raw, "Lead.Drop_Off_Reason__c")) == 1

    sf.write_config(op, None)
    assert described(raw, "Lead", "Drop_Off_Reason__c") is None
    assert grants(raw, "Lead.Drop_Off_Reason__c") == []
    assert permission_sets(raw) == [permission_set]  # it may grant other fields and be assigned to people
    assert sf.config_state(op) is None


def test_a_user_who_may_not_grant_fields_is_told_what_to_ask_for_before_anything_changes():
    with SalesforceSandbox(profile=NO_GRANTING, seed=3, size=SIZE) as restricted, connector(restricted) as c:
        with pytest.raises(CrmQueryError) as refused:
            c.write_config(create_field("lead", "Drop_Off_Reason__c"), TARGET)
        words = str(refused.value)
        assert "create the permission set" in words and "INSUFFICIENT_ACCESS" in words
        assert "ask the client's Salesforce admin to give this user the Manage Profiles and Permission Sets" in words
        assert "Traceback" not in words
        made = restricted.client().toolingexecute("query/", params={"q": FIELD.format("Drop_Off_Reason")})
        assert made["totalSize"] == 0  # refused before the field was created
