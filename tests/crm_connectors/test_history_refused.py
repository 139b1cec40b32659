"""A health check reads Salesforce history without describe-global: an org that refuses LeadHistory or
OpportunityStage must still say so in words, and the other figures must still come."""

from __future__ import annotations

from datetime import UTC, date, datetime

from crm_sandbox import SalesforceSandbox, variant
from tests.crm_connectors.connectors import connector

AS_OF = date(2025, 6, 15)
START, END = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)


def test_a_refused_history_object_is_named_and_the_stage_counts_still_come():
    profile = variant("healthy", "no-history", refused_objects={"LeadHistory", "OpportunityStage"})
    with SalesforceSandbox(profile=profile, seed=4, size=400, as_of=AS_OF) as sb:
        c = connector(sb)
        moves = c.stage_transitions("lead", "Status", START, END)
        stays = c.time_in_stage("lead", "Status", START, END)
        pipelines = c.pipelines("deal")
        described_globally = sb.stats["by_kind"].get("describe_global", 0)
    for reading in (moves, stays):
        assert not reading.available
        assert reading.note == "Salesforce keeps no LeadHistory here, or this user cannot read it."
    assert pipelines and all(p.stages for p in pipelines)  # the stages come from the picklist alone
    assert any("OpportunityStage is missing or not readable by this user" in n for n in c.notes)
    assert described_globally == 0  # the refusals were learnt from the queries themselves
