"""The portfolio and the board are cached per organization data version (engagements/views/fragments.py).

Every change made through the app shows on the next visit; a cached fragment holds no visitor's CSRF token, is
shared only by members who see the same thing, and never crosses the tenant wall.
"""

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import data_version
from accounts.models import Membership, Role
from engagements import cadence, progression
from engagements.models import ChecklistItem, Engagement, Risk, WorkStatus
from engagements.services import save_client
from engagements.views.fragments import CSRF_PLACEHOLDER
from playbooks.services import save_version

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def consultant(cast):
    return signed_in(cast.consultant)


def portfolio(e) -> str:
    return reverse("engagements:portfolio", args=[e.organization.slug])


def board(e) -> str:
    return reverse("engagements:board", args=[e.organization.slug, e.uuid])


def page(client, path) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def queries(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


# --------------------------------------------------------------------------------------------------
# Served from the cache


def test_a_second_visit_is_served_from_the_cache_with_the_same_content(engagement, consultant):
    cadence.save_board_item(
        item=Risk(engagement=engagement, organization=engagement.organization, title="Admin leaves"), actor=None
    )
    for path in (portfolio(engagement), board(engagement)):
        consultant.get(path)  # the first visit also stores the current organization in the session
        data_version.bump(engagement.organization)
        cold = queries(consultant, path)
        first = CSRF_INPUT.sub("", page(consultant, path))
        warm = queries(consultant, path)
        assert warm < cold, path
        # session and user (the session comes from the cache here), then the membership: nothing of the page's own
        assert warm <= 2, path
        second = CSRF_INPUT.sub("", page(consultant, path))
        assert re.sub(r'name="csrf-token" content="[^"]+"', "", first) == re.sub(
            r'name="csrf-token" content="[^"]+"', "", second
        )
    assert "Admin leaves" in page(consultant, board(engagement))
    assert "<title>Board · Lifecycle rebuild · GTM Ops</title>" in page(consultant, board(engagement))


def test_cached_board_holds_no_csrf_token_and_each_visitor_gets_a_working_one(engagement, cast):
    for title in ("Admin leaves", f"Typed {CSRF_PLACEHOLDER} on purpose"):
        cadence.save_board_item(
            item=Risk(engagement=engagement, organization=engagement.organization, title=title), actor=None
        )
    Membership.objects.filter(user=cast.owner, organization=cast.org).update(role=Role.CONSULTANT)
    first = Client(enforce_csrf_checks=True)
    first.force_login(cast.consultant)
    second = Client(enforce_csrf_checks=True)
    second.force_login(cast.owner)
    first_body = page(first, board(engagement))
    second.get(board(engagement))  # the first visit stores the current organization in the session
    with CaptureQueriesContext(connection) as ctx:
        second_body = page(second, board(engagement))  # the same role: the first visitor's fragment
    assert len(ctx.captured_queries) <= 2
    for body in (first_body, second_body):
        assert f'value="{CSRF_PLACEHOLDER}"' not in body
        assert f"Typed {CSRF_PLACEHOLDER} on purpose" in body, "text is never taken for the placeholder"
    cached = _fragments_in_cache(engagement, "board", cast.consultant)
    assert cached and set(CSRF_INPUT.findall(cached[0]["html"])) == {CSRF_PLACEHOLDER}, "no visitor's token cached"
    # The second visitor's forms carry a token their own cookie accepts: the quick action goes through.
    risk = Risk.objects.across_tenants("test").get(title="Admin leaves")
    token = CSRF_INPUT.search(second_body).group(1)
    action = reverse("engagements:risk-status", args=[cast.org.slug, engagement.uuid, risk.uuid])
    assert f'action="{action}"' in second_body
    response = second.post(action, {"status": "mitigated", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    risk.refresh_from_db()
    assert risk.status == "mitigated"


def _fragments_in_cache(engagement, name, user) -> list:
    """The cached values a member's visit to the board would read (same key as the view's)."""
    from django.test import RequestFactory

    from engagements.views.fragments import fragment_key

    request = RequestFactory().get("/")
    request.membership = Membership.objects.select_related("organization").get(
        user=user, organization_id=engagement.organization_id
    )
    request.org = request.membership.organization  # as org_view loads it: with its current data version
    value = cache.get(fragment_key(request, name, str(engagement.uuid)))
    return [value] if value else []


def test_a_viewer_never_gets_the_consultants_controls(engagement, cast, consultant):
    cadence.save_board_item(
        item=Risk(engagement=engagement, organization=engagement.organization, title="Admin leaves"), actor=None
    )
    assert "New engagement" in page(consultant, portfolio(engagement))
    assert "Mitigated" in page(consultant, board(engagement))
    viewer = signed_in(cast.viewer)
    assert "New engagement" not in page(viewer, portfolio(engagement))
    body = page(viewer, board(engagement))
    assert "Admin leaves" in body and "Mitigated" not in body and "csrfmiddlewaretoken" not in body.split("<main")[1]


def test_the_cache_never_crosses_the_tenant_wall(engagement, cast, consultant):
    page(consultant, board(engagement))  # cached for organization A
    outsider = signed_in(cast.outsider)
    assert outsider.get(board(engagement)).status_code == 404
    other = reverse("engagements:board", args=[cast.other_org.slug, engagement.uuid])
    assert outsider.get(other).status_code == 404
    assert "Lifecycle rebuild" not in page(outsider, reverse("engagements:portfolio", args=[cast.other_org.slug]))


def test_filters_and_pages_are_cached_apart(engagement, cast, consultant, library):
    assert "Lifecycle rebuild" in page(consultant, portfolio(engagement))
    assert "Lifecycle rebuild" not in page(consultant, portfolio(engagement) + "?status=closed")
    assert "Lifecycle rebuild" in page(consultant, portfolio(engagement) + "?status=active")


# --------------------------------------------------------------------------------------------------
# Invalidation: every change made through the app shows on the next visit


def test_ticking_a_checklist_item_shows_on_the_portfolio(engagement, consultant):
    sub = engagement.current_phase.sub_phases.order_by("order").first()
    items = list(ChecklistItem.objects.filter(sub_phase=sub, done=False))
    for item in items[:-1]:
        progression.set_checklist_item(item=item, done=True, actor=None)
    assert f"{sub.key} {sub.name}" in page(consultant, portfolio(engagement))
    path = reverse("engagements:checklist-toggle", args=[engagement.organization.slug, engagement.uuid, items[-1].uuid])
    assert consultant.post(path, {"done": "1"}).status_code == 302
    after = page(consultant, portfolio(engagement))
    # The sub-phase was the first with an open item; now it has none, and the row no longer names it.
    assert f"{sub.key} {sub.name}" not in after and engagement.current_phase.name in after


def test_adding_a_board_item_shows_on_the_board_and_the_portfolio(engagement, consultant):
    body = page(consultant, board(engagement))
    assert "Nothing in progress." in body
    portfolio_before = page(consultant, portfolio(engagement))
    assert "1 open risk" not in portfolio_before and "At risk" not in portfolio_before
    path = reverse("engagements:work-add", args=[engagement.organization.slug, engagement.uuid])
    response = consultant.post(
        path, {"form_prefix": "wip", "wip-title": "Rebuild lead routing", "wip-status": WorkStatus.IN_PROGRESS}
    )
    assert response.status_code == 302
    assert "Rebuild lead routing" in page(consultant, board(engagement))
    path = reverse("engagements:risk-add", args=[engagement.organization.slug, engagement.uuid])
    response = consultant.post(
        path, {"form_prefix": "risk", "risk-title": "Admin leaves", "risk-likelihood": "high", "risk-impact": "high"}
    )
    assert response.status_code == 302
    assert "Admin leaves" in page(consultant, board(engagement))
    after = page(consultant, portfolio(engagement))
    assert '<span class="badge warn">At risk</span>' in after and "1 open risk" in after


def test_deciding_a_gate_shows_on_the_portfolio_and_the_board(engagement, cast, consultant):
    before = page(consultant, portfolio(engagement))
    assert "Strategy" in before
    page(consultant, board(engagement))
    gate = engagement.phases.get(key="strategy").gate
    for checkpoint in gate.checkpoints.all():
        progression.resolve_checkpoint(checkpoint=checkpoint, action="waive", actor=cast.consultant, reason="test")
    path = reverse("engagements:gate-decide", args=[engagement.organization.slug, engagement.uuid, gate.uuid])
    assert consultant.post(path, {"option": "proceed-to-engineering", "note": "Agreed."}).status_code == 302
    engagement.refresh_from_db()
    assert engagement.current_phase.key == "engineering"
    row = re.search(
        r"<tr>\s*<td><a href=\"[^\"]+\"><strong>Lifecycle rebuild</strong>.*?</tr>",
        page(consultant, portfolio(engagement)),
        re.S,
    ).group(0)
    assert engagement.current_phase.name in row and ">Strategy<" not in row


def test_closing_the_engagement_makes_the_cached_board_read_only(engagement, cast, consultant):
    assert "Add a risk" in page(consultant, board(engagement))
    Engagement.objects.across_tenants("test").filter(pk=engagement.pk).update(status="closed")
    data_version.bump(engagement.organization)  # a write outside the services bumps by hand
    body = page(consultant, board(engagement))
    assert "closed; its board is read-only" in body and "Add a risk" not in body


def test_publishing_an_update_renaming_a_client_and_a_library_playbook_show(engagement, cast, consultant, library):
    Engagement.objects.across_tenants("test").filter(pk=engagement.pk).update(
        last_update_published_at=timezone.now() - timedelta(days=9)
    )
    data_version.bump(engagement.organization)
    assert "9 days ago" in page(consultant, portfolio(engagement))
    update = cadence.draft_weekly_update(engagement=engagement, actor=cast.consultant)
    cadence.publish_weekly_update(update=update, actor=cast.consultant)
    assert "Today" in page(consultant, portfolio(engagement))

    client = cast.client
    client.name = "Acme Robotics Europe"
    save_client(client=client, actor=cast.consultant)
    assert "Acme Robotics Europe" in page(consultant, portfolio(engagement))

    playbook = library["gtm-lifecycle"].playbook
    spec = library["gtm-lifecycle"].spec.model_copy(update={"name": "GTM Lifecycle (renamed)"})
    save_version(playbook=playbook, spec=spec)
    assert "GTM Lifecycle (renamed)" in page(consultant, portfolio(engagement))
    assert "GTM Lifecycle (renamed)" in page(consultant, board(engagement))


def test_days_since_the_last_update_are_calendar_days_where_the_viewer_is(engagement, consultant):
    # Published an hour ago: in some of these zones that was yesterday, whichever hour the test runs at.
    now = timezone.now()
    published = now - timedelta(hours=1)
    Engagement.objects.across_tenants("test").filter(pk=engagement.pk).update(last_update_published_at=published)
    data_version.bump(engagement.organization)
    for zone in ("Pacific/Kiritimati", "Asia/Kolkata", "UTC", "America/New_York", "Pacific/Pago_Pago"):
        consultant.cookies["tz"] = zone
        local = ZoneInfo(zone)
        yesterday = published.astimezone(local).date() < now.astimezone(local).date()
        assert ("1 day ago" if yesterday else "Today") in page(consultant, portfolio(engagement)), zone


# --------------------------------------------------------------------------------------------------
# A miss still costs a constant number of queries (the existing query-count tests measure hits on their second visit)


def _miss_queries(client, e, path) -> int:
    client.get(path)  # the first visit also stores the current organization in the session
    data_version.bump(e.organization)
    return queries(client, path)


def test_a_miss_costs_the_same_queries_whatever_the_size(engagement, cast, consultant, library):
    for i in range(2):
        cadence.save_board_item(
            item=Risk(engagement=engagement, organization=engagement.organization, title=f"Risk {i}"), actor=None
        )
    small = {path: _miss_queries(consultant, engagement, path) for path in (portfolio(engagement), board(engagement))}
    for i in range(2, 30):
        cadence.save_board_item(
            item=Risk(engagement=engagement, organization=engagement.organization, title=f"Risk {i}"), actor=None
        )
    for n in range(3):
        progression.create_engagement(
            client=cast.client,
            playbook_version=library["gtm-lifecycle"],
            name=f"More {n}",
            start_date=date(2026, 11, 2),
            actor=cast.consultant,
        )
    large = {path: _miss_queries(consultant, engagement, path) for path in small}
    assert large == small
    assert all(count > 2 for count in small.values()), "a miss reads the page's data"
