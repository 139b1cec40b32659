"""Salesforce configuration writes (write_access, config_state, write_config) through simple-salesforce against the
sandbox's Tooling API: each kind of change-plan operation is applied, read back, seen in describe, and undone to a
describe equal to the original. Expected states are read independently, with a plain simple-salesforce client
(describe, ui-api, SOQL), never through the connector under test."""

from __future__ import annotations

import pytest

from crm_connectors.base import CrmError, CrmQueryError, CrmUnavailable, WriteAccess
from crm_sandbox import SalesforceSandbox
from crm_sandbox.profiles import variant
from tests.crm_connectors.connectors import connector

SIZE = 200
OBJECTS = ("Lead", "Contact", "Account", "Opportunity")
NO_CUSTOMIZE = variant("demo", "no-customize", withheld_permissions=frozenset({"PermissionsCustomizeApplication"}))


@pytest.fixture(scope="module")
def sb():
    with SalesforceSandbox(profile="demo", seed=3, size=SIZE) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def raw(sb):
    return sb.client()  # a reader of its own: what the org describes, not what the connector says


@pytest.fixture
def sf(sb):
    with connector(sb) as c:
        c.options.sleep = lambda seconds: None  # retry backoff without waiting
        yield c
    sb.faults.clear()


def picklist(raw, sobject: str, field: str) -> list[dict]:
    found = [f for f in raw.restful(f"sobjects/{sobject}/describe")["fields"] if f["name"] == field]
    return found[0]["picklistValues"] if found else []


def record_types(raw) -> list[str]:
    infos = raw.restful("sobjects/Opportunity/describe")["recordTypeInfos"]
    return [rt["recordTypeId"] for rt in infos if not rt["master"]]


def stages(raw, record_type: str) -> list[dict]:
    return raw.restful(f"ui-api/object-info/Opportunity/picklist-values/{record_type}/StageName")["values"]


def snapshot(raw) -> dict:
    """Everything a configuration write may change, as the org describes it."""
    return {
        "describe": {o: raw.restful(f"sobjects/{o}/describe")["fields"] for o in OBJECTS},
        "pipelines": {rt: stages(raw, rt) for rt in record_types(raw)},
        "stages": raw.query(
            "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability FROM OpportunityStage"
        )["records"],
        "statuses": raw.query("SELECT ApiName, MasterLabel FROM LeadStatus")["records"],
    }


def state(value: dict, probability=None) -> dict:
    return {"label": value["label"], "active": value["active"], "probability": probability}


def op(kind: str, obj: str, field: str, value: str | None, pipeline: str | None = None, label: str = "") -> dict:
    return {
        "id": "op-1",
        "kind": kind,
        "object": obj,
        "field": field,
        "value": value,
        "pipeline": pipeline,
        "label": label,
    }


def first_active(values: list[dict]) -> dict:
    return next(v for v in values if v["active"])


def case_add_value(raw):
    assert "Engaged" not in [v["value"] for v in picklist(raw, "Lead", "Status")]
    target = {"label": "Engaged", "active": True, "probability": None}

    def shown(raw):
        values = {v["value"]: v for v in picklist(raw, "Lead", "Status")}
        statuses = [r["ApiName"] for r in raw.query("SELECT ApiName FROM LeadStatus")["records"]]
        return values["Engaged"]["active"] and values["Engaged"]["label"] == "Engaged" and "Engaged" in statuses

    return op("add_value", "lead", "Status", "Engaged"), None, target, shown


def case_relabel_value(raw):
    value = first_active(picklist(raw, "Contact", "Lifecycle_Stage__c"))
    target = {"label": f"{value['label']} (signed)", "active": True, "probability": None}

    def shown(raw):
        after = {v["value"]: v for v in picklist(raw, "Contact", "Lifecycle_Stage__c")}
        return after[value["value"]]["label"] == target["label"]

    return op("relabel_value", "contact", "Lifecycle_Stage__c", value["value"]), state(value), target, shown


def case_deactivate_value(raw):
    value = [v for v in picklist(raw, "Lead", "Status") if v["active"]][-1]
    target = {**state(value), "active": False}

    def shown(raw):
        after = {v["value"]: v for v in picklist(raw, "Lead", "Status")}
        statuses = [r["ApiName"] for r in raw.query("SELECT ApiName FROM LeadStatus")["records"]]
        return after[value["value"]]["active"] is False and value["value"] not in statuses

    return op("deactivate_value", "lead", "Status", value["value"]), state(value), target, shown


def case_set_probability(raw):
    record_type = record_types(raw)[0]
    stage = stages(raw, record_type)[0]
    before = round(stage["attributes"]["defaultProbability"])
    after = before + 5 if before <= 95 else before - 5
    prior = {"label": stage["label"], "active": True, "probability": before}
    target = {**prior, "probability": after}

    def shown(raw):
        listed = {s["value"]: s for s in stages(raw, record_type)}
        rows = raw.query(f"SELECT DefaultProbability FROM OpportunityStage WHERE ApiName = '{stage['value']}'")
        return (
            listed[stage["value"]]["attributes"]["defaultProbability"] == after
            and rows["records"][0]["DefaultProbability"] == after
        )

    return op("set_probability", "deal", "StageName", stage["value"], record_type), prior, target, shown


def case_deactivate_stage(raw):
    record_type, *others = record_types(raw)
    stage = stages(raw, record_type)[-1]
    elsewhere = {rt: [s["value"] for s in stages(raw, rt)] for rt in others}
    prior = {"label": stage["label"], "active": True, "probability": round(stage["attributes"]["defaultProbability"])}

    def shown(raw):  # retired from this pipeline only
        return stage["value"] not in [s["value"] for s in stages(raw, record_type)] and elsewhere == {
            rt: [s["value"] for s in stages(raw, rt)] for rt in others
        }

    return (
        op("deactivate_value", "deal", "StageName", stage["value"], record_type),
        prior,
        {**prior, "active": False},
        shown,
    )


def case_create_pipeline_stage(raw):
    record_type = record_types(raw)[0]
    assert "SQL" not in [v["value"] for v in picklist(raw, "Opportunity", "StageName")]
    target = {"label": "SQL", "active": True, "probability": 25}

    def shown(raw):
        listed = {s["value"]: s for s in stages(raw, record_type)}
        attributes = listed["SQL"]["attributes"]
        master = [v["value"] for v in picklist(raw, "Opportunity", "StageName")]
        return attributes["defaultProbability"] == 25 and not attributes["closed"] and "SQL" in master

    return op("create_pipeline_stage", "deal", "StageName", "SQL", record_type), None, target, shown


def case_create_field(raw):
    labels = ["No Budget", "Timing", "Not a Fit"]
    target = {"type": "picklist", "values": labels}

    def shown(raw):
        values = picklist(raw, "Lead", "Drop_Off_Reason__c")
        return [v["label"] for v in values if v["active"]] == labels

    return op("create_field", "lead", "Drop_Off_Reason__c", None, label="Drop-off Reason"), None, target, shown


CASES = [
    case_add_value,
    case_relabel_value,
    case_deactivate_value,
    case_set_probability,
    case_deactivate_stage,
    case_create_pipeline_stage,
    case_create_field,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("case_") for c in CASES])
def test_an_operation_applies_shows_in_describe_and_undoes_to_the_original(sb, raw, sf, case):
    operation, expected_prior, target, shown = case(raw)
    original = snapshot(raw)

    prior = sf.config_state(operation)
    assert prior == expected_prior
    sf.write_config(operation, target)
    assert sf.config_state(operation) == target
    assert shown(raw)
    sf.write_config(operation, prior)

    assert sf.config_state(operation) == prior
    assert snapshot(raw) == original


def test_write_access_is_read_from_the_users_permissions(sf):
    assert sf.write_access() == WriteAccess(True, "")
    with SalesforceSandbox(profile=NO_CUSTOMIZE, seed=3, size=SIZE) as restricted, connector(restricted) as c:
        access = c.write_access()
        assert access.allowed is False and "Customize Application" in access.reason
        with pytest.raises(CrmQueryError, match="INSUFFICIENT_ACCESS"):  # the org refuses the write too
            c.write_config(op("add_value", "lead", "Status", "Engaged"), {"label": "Engaged", "active": True})


def test_the_third_write_fails_with_the_crms_words_and_writes_are_counted(sb, raw, sf):
    original = snapshot(raw)
    names = ["Engaged", "Nurture", "Recycled Lead"]
    ops = [op("add_value", "lead", "Status", n) for n in names]
    sb.inject("rejected", path=r"/tooling/sobjects/", skip=2)
    served, spent = sb.stats["total"], sf.calls_spent

    for operation in ops[:2]:
        sf.write_config(operation, {"label": operation["value"], "active": True, "probability": None})
    with pytest.raises(CrmError, match="FIELD_INTEGRITY_EXCEPTION"):
        sf.write_config(ops[2], {"label": "Recycled Lead", "active": True, "probability": None})

    assert sf.calls_spent - spent == sb.stats["total"] - served > 0  # every read and write, through the guard
    assert [v["value"] for v in picklist(raw, "Lead", "Status")][-2:] == names[:2]
    for operation in reversed(ops[:2]):
        sf.write_config(operation, None)
    assert snapshot(raw) == original


def test_a_write_answered_500_is_retried_then_reported(sb, sf):
    sf.write_access()  # signed in: the login is not part of what the write costs
    sb.inject("server_error", path=r"/tooling/sobjects/", count=None)
    spent = sf.calls_spent
    with pytest.raises(CrmUnavailable, match="500"):
        sf.write_config(op("add_value", "lead", "Status", "Engaged"), {"label": "Engaged", "active": True})
    retries = sf.options.retry.max_retries
    assert sb.stats["by_kind"]["tooling_patch"] >= retries + 1
    assert sf.calls_spent - spent == 1 + retries + 1  # the read, the write and its retries
    sb.faults.clear()
    assert sf.config_state(op("add_value", "lead", "Status", "Engaged")) is None


def test_a_state_out_of_range_is_refused_before_anything_is_sent(sb, sf):
    served = sb.stats["total"]
    stage = op("set_probability", "deal", "StageName", "Closed Won", "master")
    with pytest.raises(CrmQueryError, match=r"op-1 \(set_probability\) is 140: a probability is 0 to 100"):
        sf.write_config(stage, {"label": "Closed Won", "active": True, "probability": 140})
    assert sb.stats["total"] == served


def test_a_stage_added_to_two_pipelines_is_undone_pipeline_by_pipeline(raw, sf):
    """As apply and undo run: the prior read just before each write, undone in reverse. The second pipeline finds
    the stage already in Opportunity Stage, only not offered, so its undo takes it out of that pipeline alone."""
    first, second = record_types(raw)[:2]
    original = snapshot(raw)
    ops = [op("create_pipeline_stage", "deal", "StageName", "SQL", rt) for rt in (first, second)]
    target = {"label": "SQL", "active": True, "probability": 25}

    priors = []
    for operation in ops:
        priors.append(sf.config_state(operation))
        sf.write_config(operation, target)
    assert priors == [None, {**target, "active": False}]
    assert all("SQL" in [s["value"] for s in stages(raw, rt)] for rt in (first, second))

    sf.write_config(ops[1], priors[1])
    assert "SQL" not in [s["value"] for s in stages(raw, second)]
    assert sf.config_state(ops[0]) == target
    sf.write_config(ops[0], priors[0])
    assert snapshot(raw) == original
