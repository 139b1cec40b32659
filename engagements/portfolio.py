"""The engagement list (the portfolio): one page of an organization's engagements with the columns people scan.

Two queries whatever the number of engagements: the page of ids (filtered and sorted), then that page's rows with
their columns as correlated subqueries. Written as SQL on purpose: built from ORM expressions (Subquery, OuterRef,
Exists, joined F()), the same query cost about 2 ms of building and compiling on every request, more than the
database takes to run it; and the planner settles these small subqueries faster than a five-table join. Constant SQL,
run by SQLite and PostgreSQL; a top-level query keeps the table's name, "engagements_engagement", as its alias.
"""

from dataclasses import dataclass
from datetime import date

from django.core.paginator import Paginator
from django.db.models import CharField, F, IntegerField
from django.db.models.expressions import RawSQL
from django.http import QueryDict
from django.utils import timezone

from .models import DecisionStatus, Engagement, EngagementStatus, GateStatus, PhaseStatus, RiskStatus, TeamRole

PAGE_SIZE = 50
# A week without a published weekly update is late: the cadence the weekly update page promises clients.
UPDATE_DUE_DAYS = 7

COLUMNS = {
    "client_name": (
        'SELECT c."name" FROM "engagements_clientaccount" c WHERE c."id" = "engagements_engagement"."client_id"',
        [],
        CharField(),
    ),
    "playbook_name": (
        'SELECT p."name" FROM "playbooks_playbookversion" v '
        'INNER JOIN "playbooks_playbook" p ON v."playbook_id" = p."id" '
        'WHERE v."id" = "engagements_engagement"."playbook_version_id"',
        [],
        CharField(),
    ),
    "playbook_number": (
        'SELECT v."number" FROM "playbooks_playbookversion" v '
        'WHERE v."id" = "engagements_engagement"."playbook_version_id"',
        [],
        IntegerField(),
    ),
    # The owner: the engagement's first architect, else its first team member (full name, else email).
    "owner": (
        """SELECT COALESCE(NULLIF(TRIM(u."first_name" || ' ' || u."last_name"), ''), u."email")
        FROM "engagements_engagementmember" m INNER JOIN "auth_user" u ON m."user_id" = u."id"
        WHERE m."engagement_id" = "engagements_engagement"."id"
        ORDER BY CASE WHEN m."role" = %s THEN 0 ELSE 1 END, m."created_at", m."id" LIMIT 1""",
        [TeamRole.ARCHITECT.value],
        CharField(),
    ),
    "phase_name": (
        'SELECT s."name" FROM "engagements_phasestate" s WHERE s."id" = "engagements_engagement"."current_phase_id"',
        [],
        CharField(),
    ),
    # "<key> <name>" of the current phase's first sub-phase that is not skipped and still has an open checklist
    # item (keys have no spaces: playbooks.schema.KEY_PATTERN).
    "current_sub": (
        """SELECT s."key" || ' ' || s."name" FROM "engagements_subphasestate" s
        WHERE s."phase_id" = "engagements_engagement"."current_phase_id" AND NOT s."skipped" AND EXISTS (
            SELECT 1 FROM "engagements_checklistitem" c WHERE c."sub_phase_id" = s."id" AND NOT c."done"
        ) ORDER BY s."order" LIMIT 1""",
        [],
        CharField(),
    ),
    # "<status> <name>" of the first open or pending gate, by phase order, of a phase that is not skipped.
    "next_gate": (
        """SELECT g."status" || ' ' || g."name" FROM "engagements_gate" g
        INNER JOIN "engagements_phasestate" p ON g."phase_id" = p."id"
        WHERE g."engagement_id" = "engagements_engagement"."id" AND g."status" IN (%s, %s) AND p."status" <> %s
        ORDER BY p."order" LIMIT 1""",
        [GateStatus.OPEN.value, GateStatus.PENDING.value, PhaseStatus.SKIPPED.value],
        CharField(),
    ),
    "open_decisions": (
        """SELECT COUNT(*) FROM "engagements_decisionlogentry" d
        WHERE d."engagement_id" = "engagements_engagement"."id" AND d."status" = %s""",
        [DecisionStatus.NEEDED.value],
        IntegerField(),
    ),
    "open_risks": (
        """SELECT COUNT(*) FROM "engagements_risk" r
        WHERE r."engagement_id" = "engagements_engagement"."id" AND r."status" = %s""",
        [RiskStatus.OPEN.value],
        IntegerField(),
    ),
    # Whole percent of the checklist done, counting only items of phases and sub-phases that still apply (a
    # skipped phase's items are never ticked); NULL for an engagement without checklist items.
    "progress": (
        """SELECT CASE WHEN COUNT(*) = 0 THEN NULL
            ELSE 100 * SUM(CASE WHEN c."done" THEN 1 ELSE 0 END) / COUNT(*) END
        FROM "engagements_checklistitem" c INNER JOIN "engagements_phasestate" p ON c."phase_id" = p."id"
        LEFT JOIN "engagements_subphasestate" s ON c."sub_phase_id" = s."id"
        WHERE c."engagement_id" = "engagements_engagement"."id" AND p."status" <> %s
            AND (s."id" IS NULL OR NOT s."skipped")""",
        [PhaseStatus.SKIPPED.value],
        IntegerField(),
    ),
}

# The sortable columns: the `sort` parameter (a leading "-" for descending) and what it orders by. Empty values
# sort last either way; the id breaks ties so pages never overlap.
SORTS = {
    "name": "name",
    "client": "client_name",
    "owner": "owner",
    "start": "start_date",
    "target": "target_date",
    "progress": "progress",
    "updated": "last_update_published_at",
    "created": "created_at",
}
DEFAULT_SORT = "-created"


def ordering(sort: str) -> tuple[str, list]:
    """The valid sort parameter (the default for anything else) and its ORDER BY expressions."""
    key = sort.removeprefix("-")
    if key not in SORTS:
        sort, key = DEFAULT_SORT, DEFAULT_SORT.removeprefix("-")
    field = F(SORTS[key])
    if sort.startswith("-"):
        return sort, [field.desc(nulls_last=True), F("id").desc()]
    return sort, [field.asc(nulls_last=True), F("id").asc()]


def _annotated(queryset, names):
    return queryset.annotate(**{n: RawSQL(*COLUMNS[n]) for n in names})  # noqa: S611 - constant SQL above


@dataclass(frozen=True)
class Health:
    """How an engagement stands, from facts on its row: closed and on-hold engagements are their status; an active
    one is off track once its target date has passed, at risk with an open risk or a late weekly update, else on
    track. `reasons` says why, in words."""

    label: str
    css: str
    reasons: tuple[str, ...] = ()

    @classmethod
    def of(cls, e, today: date) -> "Health":
        if e.status == EngagementStatus.CLOSED:
            return cls("Closed", "")
        if e.status == EngagementStatus.ON_HOLD:
            return cls("On hold", "warn")
        reasons = []
        late = e.target_date is not None and e.target_date < today
        if late:
            reasons.append(f"target date passed {(today - e.target_date).days} days ago")
        if e.open_risks:
            reasons.append(f"{e.open_risks} open risk{'s' if e.open_risks != 1 else ''}")
        if e.days_since_update is not None and e.days_since_update > UPDATE_DUE_DAYS:
            reasons.append("weekly update due")
        if late:
            return cls("Off track", "bad", tuple(reasons))
        return cls("At risk", "warn", tuple(reasons)) if reasons else cls("On track", "ok")


def _checked_progress(e) -> None:
    """A share a user reads is between 0 and 100: anything else is a defect, said in words instead of a figure."""
    e.progress_defect = ""
    if e.progress is not None and not 0 <= e.progress <= 100:
        e.progress_defect = f"progress figure {e.progress}% is impossible: report this engagement"
        e.progress = None


def _split(value):
    """("<first word>", "<the rest>") of a "<key> <name>" column, (None, None) when there is none."""
    if value is None:
        return None, None
    first, _, rest = value.partition(" ")
    return first, rest


def page(organization, form, *, sort: str, page_number, today: date) -> dict:
    """The page of engagements the filter form and sort select, with each row's columns and health, and the links
    that sort by each column (keeping the filters)."""
    sort, order = ordering(sort)
    key = sort.removeprefix("-")
    # Paginate the filtered engagements' ids, then compute the columns for that page's rows only: with OFFSET, the
    # subqueries would otherwise also run for every skipped row. A computed sort column is computed for every row.
    ids = form.filter(Engagement.objects.for_org(organization))
    if SORTS[key] in COLUMNS:
        ids = _annotated(ids, [SORTS[key]])
    paginated = Paginator(ids.order_by(*order).values("pk"), PAGE_SIZE).get_page(page_number)
    paginated.object_list = rows(organization, paginated.object_list, order=order, today=today)
    return {"page": paginated, "sort": sort, "sort_links": sort_links(form.data, sort)}


def rows(organization, ids, *, order, today: date) -> list[Engagement]:
    """The engagements of `ids` (a queryset of pks), in `order`, with every column, their health and checked
    progress."""
    engagements = _annotated(
        Engagement.objects.for_org(organization)
        .filter(pk__in=ids)
        .only(
            "uuid",
            "name",
            "status",
            "start_date",
            "target_date",
            "created_at",
            "current_phase_id",
            "last_update_published_at",
        ),
        COLUMNS,
    ).order_by(*order)
    engagements = list(engagements)
    for e in engagements:
        published = e.last_update_published_at
        # calendar days in the viewer's time zone
        e.days_since_update = (today - timezone.localdate(published)).days if published else None
        e.current_sub_key, e.current_sub_name = _split(e.current_sub)
        e.next_gate_status, e.next_gate_name = _split(e.next_gate)
        e.health = Health.of(e, today)
        _checked_progress(e)
    return engagements


def sort_links(params, sort: str) -> dict:
    """For each sortable column: the query string that sorts by it (the filters kept, back to the first page; a
    second click reverses) and its aria-sort state."""
    links = {}
    for key in SORTS:
        query = QueryDict(mutable=True)
        query.update({k: v for k, v in params.items() if k not in ("sort", "page") and v})
        current = sort.removeprefix("-") == key
        query["sort"] = key if current and sort.startswith("-") else f"-{key}" if current else key
        state = ("descending" if sort.startswith("-") else "ascending") if current else "none"
        links[key] = {"query": query.urlencode(), "state": state}
    return links
