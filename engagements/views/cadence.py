"""Board, decision log, risks, releases, feedback and weekly updates: thin views over engagements.cadence.

Board items of the five kinds share one set of views, told apart by the `kind` keyword each URL passes
(engagements/urls_cadence.py); the URL parameter naming the item is `<kind>_uuid`.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import org_view
from accounts.models import DomainError

from .. import cadence
from ..forms_cadence import EDIT_FORMS, QUICK_FORMS, DecideForm, WeeklyUpdateForm
from ..models import (
    DecisionCategory,
    DecisionLogEntry,
    DecisionStatus,
    Engagement,
    EngagementStakeholder,
    FeedbackItem,
    GateDecision,
    ReleaseStatus,
    RiskStatus,
    UpdateStatus,
    WeeklyUpdate,
    WorkStatus,
)
from .fragments import cached_fragment, render_fragment

PAGE_SIZE = 25
CLOSED_BOARD = "This engagement is closed; its board is read-only."

# What each kind is called, which statuses its quick actions may set, and where its list lives.
KINDS: dict[str, dict] = {
    "work": {"label": "work item", "plural": "Work items", "statuses": WorkStatus, "list": "work-list"},
    "decision": {"label": "decision", "plural": "Decisions", "statuses": DecisionStatus, "list": "decision-log"},
    "risk": {"label": "risk", "plural": "Risks", "statuses": RiskStatus, "list": "risk-list"},
    "release": {"label": "release", "plural": "Releases", "statuses": ReleaseStatus, "list": "release-list"},
    "feedback": {"label": "feedback item", "plural": "Client feedback", "statuses": None, "list": "feedback-list"},
}
FEEDBACK_STATUSES = [("open", "Open"), ("resolved", "Resolved")]

# The lanes of the board, in the delivery model's order, with the kind of card each holds and the
# prefix of its inline add form (two lanes add work items, so prefixes tell their forms apart).
LANE_KIND = {"in_progress": "work", "decisions": "decision", "risks": "risk", "releases": "release", "upcoming": "work"}
LANE_FORM = {
    "in_progress": "wip",
    "decisions": "decision",
    "risks": "risk",
    "releases": "release",
    "upcoming": "upcoming",
}
LANE_ADD_LABEL = {
    "in_progress": "Add work in progress",
    "decisions": "Add a decision needed",
    "risks": "Add a risk",
    "releases": "Add a release",
    "upcoming": "Add upcoming work",
}
LANE_EMPTY = {
    "in_progress": "Nothing in progress.",
    "decisions": "No decisions waiting.",
    "risks": "No open risks.",
    "releases": "No releases yet.",
    "upcoming": "Nothing planned yet.",
}
FORM_PREFIXES = {"wip": "work", "upcoming": "work", "decision": "decision", "risk": "risk", "release": "release",
                 "feedback": "feedback"}
FORM_INITIAL = {"wip": {"status": WorkStatus.IN_PROGRESS}, "upcoming": {"status": WorkStatus.UPCOMING}}


def _engagement(request, engagement_uuid, *related, defer=()) -> Engagement:
    # The page head shows the client and the playbook (templates/engagements/_engagement_head.html).
    queryset = Engagement.objects.for_org(request.org).select_related("client", "playbook_version__playbook", *related)
    engagement = get_object_or_404(queryset.defer(*defer) if defer else queryset, uuid=engagement_uuid)
    engagement.organization = request.org  # the same row, already loaded by org_view
    return engagement


def _board_engagement(request, engagement_uuid) -> Engagement:
    """The engagement of the board and its actions: they never read the playbook's content (tens of kB of JSON)."""
    return _engagement(request, engagement_uuid, defer=("playbook_version__content",))


def can_change(request, engagement: Engagement) -> bool:
    return request.membership.can_write and engagement.is_open


def safe_next(request, default: str) -> str:
    """Where to go after a form: the posted `next` when it stays inside this organization's pages."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if (
        target
        and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
        and target.startswith(reverse("accounts:org-home", args=[request.org.slug]))
    ):
        return target
    return default


def board_url(request, engagement) -> str:
    return reverse("engagements:board", args=[request.org.slug, engagement.uuid])


def _item(request, engagement, kind, kwargs):
    model = cadence.BOARD_MODELS[kind]
    return get_object_or_404(
        model.objects.for_org(request.org), engagement=engagement, uuid=kwargs[f"{kind}_uuid"]
    )


# --------------------------------------------------------------------------------------------------
# The board


def _quick_form(prefix, engagement, data=None):
    form_class = QUICK_FORMS[FORM_PREFIXES[prefix]]
    return form_class(data, prefix=prefix, engagement=engagement, initial=FORM_INITIAL.get(prefix))


# A stand-in for an item's uuid: each kind's item URLs are reversed once, then every card fills in its uuid.
_ANY_UUID = "00000000-0000-0000-0000-000000000000"
CARD_URLS = ("edit", "status", "visibility")
# A card's quick status buttons, by kind and status (feedback: by `resolved`): (new status, text, secondary).
CARD_ACTIONS = {
    ("work", WorkStatus.UPCOMING): (("in_progress", "Start", False),),
    ("work", WorkStatus.IN_PROGRESS): (("done", "Mark done", False), ("upcoming", "Not yet", True)),
    ("risk", RiskStatus.OPEN): (("mitigated", "Mitigated", False), ("closed", "Close", True)),
    ("feedback", False): (("resolved", "Resolve", False),),
}


def _prepare_cards(request, engagement, kind, items) -> None:
    """Set edit_url, status_url, visibility_url (one reverse() per action, not three per card) and actions."""
    if not items:
        return
    patterns = []
    for action in CARD_URLS:
        url = reverse(f"engagements:{kind}-{action}", args=[request.org.slug, engagement.uuid, _ANY_UUID])
        prefix, _, suffix = url.rpartition(_ANY_UUID)
        patterns.append((f"{action}_url", prefix, suffix))
    for item in items:
        uuid = str(item.uuid)
        for attr, prefix, suffix in patterns:
            setattr(item, attr, f"{prefix}{uuid}{suffix}")
        item.actions = CARD_ACTIONS.get((kind, item.resolved if kind == "feedback" else item.status), ())


def _lanes(request, engagement) -> dict[str, list]:
    engagement.organization = request.org  # the same row: spares a query
    return cadence.board_lanes(engagement)


def _add_url(request, engagement, kind) -> str:
    return reverse(f"engagements:{kind}-add", args=[request.org.slug, engagement.uuid])


def board_context(request, engagement, *, bound=None, open_prefix=None, notice="", error="", error_item=None) -> dict:
    """Everything the board (and its htmx fragment) shows: four queries for the lanes, one for feedback.

    The add forms stay collapsed, so the board renders only the one coming back with errors (`bound`) or the
    one asked for without JavaScript (`open_prefix`); htmx fetches the others when their <details> opens.
    """
    forms = {}
    if open_prefix is not None:
        forms[open_prefix] = _quick_form(open_prefix, engagement)
    if bound is not None:
        forms[bound.prefix] = bound
    rows = _lanes(request, engagement)
    work_add = _add_url(request, engagement, "work")
    lanes: list[dict] = []
    for key, label in cadence.LANES:
        kind, prefix = LANE_KIND[key], LANE_FORM[key]
        lanes.append(
            {
                "key": key,
                "label": label,
                "kind": kind,
                "items": rows[key],
                "prefix": prefix,
                "form": forms.get(prefix),
                "add_url": work_add if kind == "work" else _add_url(request, engagement, kind),
                "add_label": LANE_ADD_LABEL[key],
                "empty": LANE_EMPTY[key],
            }
        )
    feedback = list(
        FeedbackItem.objects.for_org(request.org).filter(engagement=engagement, resolved=False).order_by("-created_at")
    )
    for kind in ("work", "decision", "risk", "release"):
        _prepare_cards(request, engagement, kind, [i for lane in lanes if lane["kind"] == kind for i in lane["items"]])
    _prepare_cards(request, engagement, "feedback", feedback)
    return {
        "engagement": engagement,
        "lanes": lanes,
        "feedback": feedback,
        "feedback_form": forms.get("feedback"),
        "feedback_add": _add_url(request, engagement, "feedback"),
        "can_change": can_change(request, engagement),
        "notice": notice,
        "error": error,
        "error_item": error_item,
        "board_path": board_url(request, engagement),
    }


def _board_response(request, engagement, *, status=200, **extra):
    context = board_context(request, engagement, **extra)
    template = "engagements/_board_content.html#board" if request.htmx else "engagements/board.html"
    return render(request, template, context, status=status)


@org_view
def board(request, engagement_uuid):
    if request.htmx:
        return _board_response(request, _board_engagement(request, engagement_uuid))

    # The page's content is the same for every member with this role until the organization's data changes: cached
    # (views/fragments.py). A hit needs no query: the key holds the organization, so only a board found in it by
    # a miss is ever stored under it.
    def build():
        engagement = _board_engagement(request, engagement_uuid)
        context = board_context(request, engagement)
        return {"html": render_fragment(request, "engagements/_board_content.html", context), "name": engagement.name}

    content = cached_fragment(request, "board", str(engagement_uuid), build=build)
    return render(request, "engagements/board.html", {"content": content["html"], "title": content["name"]})


def _form_prefix(request, kind):
    """The add form asked for: a lane's prefix of this kind (two lanes add work items), else the kind's own.
    Fetching a form (GET) without a prefix gets the kind's first form (work: the in-progress lane's)."""
    prefix = (request.POST if request.method == "POST" else request.GET).get("form_prefix", kind)
    if FORM_PREFIXES.get(prefix) != kind:
        prefix = kind if kind in FORM_PREFIXES else None
    if prefix is None and request.method == "GET":
        prefix = next(p for p, k in FORM_PREFIXES.items() if k == kind)
    if prefix is None:
        raise Http404("Unknown form.")
    return prefix


@org_view
@require_http_methods(["GET", "POST"])
def item_add(request, engagement_uuid, kind):
    """Inline add form of a lane (or of the feedback section). htmx swaps the whole board back.

    GET: htmx fetches the empty form when its <details> opens; without htmx, the board with that form open.
    """
    engagement = _board_engagement(request, engagement_uuid)
    prefix = _form_prefix(request, kind)
    if request.method == "GET":
        if not request.htmx:
            return _board_response(request, engagement, open_prefix=prefix)
        if not request.membership.can_write:
            raise PermissionDenied("Viewers can look but not change anything.")
        if not engagement.is_open:  # closed since the board was shown
            return HttpResponse(f'<p class="flash bad" role="alert">{CLOSED_BOARD}</p>')
        context = {
            "engagement": engagement,
            "form": _quick_form(prefix, engagement),
            "action": _add_url(request, engagement, kind),
            "board_path": board_url(request, engagement),
        }
        return render(request, "engagements/_board_add_form.html", context)
    form = _quick_form(prefix, engagement, request.POST)
    error = ""
    if form.is_valid():
        try:
            item = cadence.save_board_item(item=form.save(commit=False), actor=request.user, request=request)
        except DomainError as exc:
            # Shown above the lanes too: on a closed engagement the add forms are not shown at all.
            error = str(exc)
            form.add_error(None, error)
        else:
            notice = f"Added “{item.title}”."
            if request.htmx:
                return _board_response(request, engagement, notice=notice)
            messages.success(request, notice)
            return redirect(safe_next(request, board_url(request, engagement)))
    # htmx swaps only 2xx responses, so a form with errors comes back as 200 inside the fragment.
    return _board_response(request, engagement, bound=form, error=error, status=200 if request.htmx else 400)


def _apply_status(item, kind, request) -> None:
    """Set the status a quick action asks for; refuse values the kind does not have."""
    value = request.POST.get("status", "")
    if kind == "feedback":
        if value not in ("open", "resolved"):
            raise DomainError("Choose open or resolved.")
        item.resolved = value == "resolved"
        return
    if value not in KINDS[kind]["statuses"].values:
        raise DomainError(f"“{value}” is not a status of a {KINDS[kind]['label']}.")
    if kind == "decision" and value == DecisionStatus.DECIDED:
        form = DecideForm(request.POST)
        if not form.is_valid() and not item.decision.strip():
            raise DomainError("Write down what was decided before marking it decided.")
        if form.is_valid():
            item.decision = form.cleaned_data["decision"].strip()
    item.status = value


@org_view
@require_POST
def item_status(request, engagement_uuid, kind, **kwargs):
    """A card's quick action: move it to another status (and so, often, to another lane)."""
    engagement = _board_engagement(request, engagement_uuid)
    item = _item(request, engagement, kind, kwargs)
    try:
        _apply_status(item, kind, request)
        cadence.save_board_item(item=item, actor=request.user, request=request)
    except DomainError as exc:
        if request.htmx:
            return _board_response(request, engagement, error=f"“{item.title}”: {exc}", error_item=item.uuid)
        messages.error(request, str(exc))
    else:
        notice = f"“{item.title}” is now {_status_label(item, kind).lower()}."
        if request.htmx:
            return _board_response(request, engagement, notice=notice)
        messages.success(request, notice)
    return redirect(safe_next(request, board_url(request, engagement)))


def _status_label(item, kind) -> str:
    if kind == "feedback":
        return "Resolved" if item.resolved else "Open"
    return item.get_status_display()


@org_view
@require_POST
def item_visibility(request, engagement_uuid, kind, **kwargs):
    """Show an item to the client's stakeholders in their portal, or keep it internal."""
    engagement = _board_engagement(request, engagement_uuid)
    item = _item(request, engagement, kind, kwargs)
    item.client_visible = request.POST.get("client_visible") == "1"
    try:
        cadence.save_board_item(item=item, actor=request.user, request=request)
    except DomainError as exc:
        if request.htmx:
            return _board_response(request, engagement, error=str(exc), error_item=item.uuid)
        messages.error(request, str(exc))
    else:
        notice = f"“{item.title}” is {'visible to the client' if item.client_visible else 'internal'}."
        if request.htmx:
            return _board_response(request, engagement, notice=notice)
        messages.success(request, notice)
    return redirect(safe_next(request, board_url(request, engagement)))


@org_view
def item_edit(request, engagement_uuid, kind, **kwargs):
    engagement = _engagement(request, engagement_uuid)
    item = _item(request, engagement, kind, kwargs)
    writable = can_change(request, engagement)
    form = EDIT_FORMS[kind](request.POST or None, instance=item, engagement=engagement)
    if not writable:
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            cadence.save_board_item(item=form.save(commit=False), actor=request.user, request=request)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved “{item.title}”.")
            return redirect(safe_next(request, board_url(request, engagement)))
    return render(
        request,
        "engagements/board_item_form.html",
        {
            "engagement": engagement,
            "item": item,
            "kind": kind,
            "kind_label": KINDS[kind]["label"],
            "list_url": reverse(f"engagements:{KINDS[kind]['list']}", args=[request.org.slug, engagement.uuid]),
            "list_label": KINDS[kind]["plural"],
            "form": form,
            "can_change": writable,
            "next": safe_next(request, ""),
            "active_tab": "decision-log" if kind == "decision" else "board",
        },
        status=400 if request.method == "POST" else 200,
    )


@org_view
def item_delete(request, engagement_uuid, kind, **kwargs):
    engagement = _engagement(request, engagement_uuid)
    item = _item(request, engagement, kind, kwargs)
    error = ""
    if request.method == "POST":
        try:
            cadence.delete_board_item(item=item, actor=request.user, request=request)
        except DomainError as exc:
            error = str(exc)
        else:
            messages.success(request, f"Deleted “{item.title}”.")
            return redirect(safe_next(request, board_url(request, engagement)))
    return render(
        request,
        "engagements/board_item_delete.html",
        {
            "engagement": engagement,
            "item": item,
            "kind": kind,
            "kind_label": KINDS[kind]["label"],
            "error": error,
            "can_change": can_change(request, engagement),
            "next": safe_next(request, ""),
            "active_tab": "decision-log" if kind == "decision" else "board",
        },
        status=400 if error else 200,
    )


@org_view
def item_list(request, engagement_uuid, kind):
    """Every work item, risk, release or feedback item, whatever its lane, filtered by status."""
    engagement = _engagement(request, engagement_uuid)
    model = cadence.BOARD_MODELS[kind]
    rows = model.objects.for_org(request.org).filter(engagement=engagement)
    choices = FEEDBACK_STATUSES if kind == "feedback" else KINDS[kind]["statuses"].choices
    status = request.GET.get("status", "")
    if status in dict(choices):
        rows = rows.filter(resolved=status == "resolved") if kind == "feedback" else rows.filter(status=status)
    else:
        status = ""
    page = Paginator(rows.order_by("-updated_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "engagements/board_item_list.html",
        {
            "engagement": engagement,
            "kind": kind,
            "kind_label": KINDS[kind]["label"],
            "title": KINDS[kind]["plural"],
            "page": page,
            "status": status,
            "status_choices": choices,
            "can_change": can_change(request, engagement),
        },
    )


# --------------------------------------------------------------------------------------------------
# The decision log


@org_view
def decision_log(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    form = QUICK_FORMS["decision"](request.POST or None, prefix="decision", engagement=engagement)
    if request.method == "POST" and form.is_valid():
        try:
            item = cadence.save_board_item(item=form.save(commit=False), actor=request.user, request=request)
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Added “{item.title}” to the decision log.")
            return redirect("engagements:decision-log", org_slug=request.org.slug, engagement_uuid=engagement.uuid)
    rows = DecisionLogEntry.objects.for_org(request.org).filter(engagement=engagement).select_related("gate__phase")
    category, status = request.GET.get("category", ""), request.GET.get("status", "")
    if category in DecisionCategory.values:
        rows = rows.filter(category=category)
    else:
        category = ""
    if status in DecisionStatus.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    page = Paginator(rows.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "engagement": engagement,
        "page": page,
        "category": category,
        "status": status,
        "categories": DecisionCategory.choices,
        "statuses": DecisionStatus.choices,
        "form": form,
        "can_change": can_change(request, engagement),
        "filtered": bool(category or status),
        # the decisions taken at gates belong in the engagement's record of decisions too
        "gate_decisions": GateDecision.objects.filter(gate__engagement=engagement)
        .select_related("gate", "decided_by")
        .order_by("-created_at", "-id"),
    }
    if request.htmx and request.method == "GET":
        return render(request, "engagements/decision_log.html#log", context)
    return render(request, "engagements/decision_log.html", context, status=400 if request.method == "POST" else 200)


# --------------------------------------------------------------------------------------------------
# Weekly updates


def _recipients(request, engagement):
    """Who a published update emails."""
    return list(
        EngagementStakeholder.objects.for_org(request.org)
        .recipients_of(engagement, "weekly_update")
        .select_related("stakeholder")
        .order_by("stakeholder__name")
    )


@org_view
def update_list(request, engagement_uuid):
    engagement = _engagement(request, engagement_uuid)
    updates = WeeklyUpdate.objects.for_org(request.org).filter(engagement=engagement).select_related("published_by")
    page = Paginator(updates.order_by("-week_start"), PAGE_SIZE).get_page(request.GET.get("page"))
    this_week = cadence.week_of(timezone.localdate())
    return render(
        request,
        "engagements/update_list.html",
        {
            "engagement": engagement,
            "page": page,
            "this_week": this_week,
            "has_this_week": updates.filter(week_start=this_week).exists(),
            "recipients": _recipients(request, engagement),
            "can_change": request.membership.can_write,
        },
    )


@org_view
@require_POST
def update_draft(request, engagement_uuid):
    """Draft this week's update from the week's activity (or open the draft that already exists)."""
    engagement = _engagement(request, engagement_uuid)
    try:
        update = cadence.draft_weekly_update(engagement=engagement, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("engagements:update-list", org_slug=request.org.slug, engagement_uuid=engagement.uuid)
    if update.status == UpdateStatus.PUBLISHED:
        messages.info(request, "This week's update is already published.")
    return redirect(
        "engagements:update-edit", org_slug=request.org.slug, engagement_uuid=engagement.uuid, update_uuid=update.uuid
    )


def _update(request, engagement, update_uuid) -> WeeklyUpdate:
    return get_object_or_404(
        WeeklyUpdate.objects.for_org(request.org).select_related("published_by"),
        engagement=engagement,
        uuid=update_uuid,
    )


@org_view
def update_edit(request, engagement_uuid, update_uuid):
    """Edit the four sections while the update is a draft; a published update is read-only."""
    engagement = _engagement(request, engagement_uuid)
    update = _update(request, engagement, update_uuid)
    draft = update.status == UpdateStatus.DRAFT
    form = WeeklyUpdateForm(request.POST or None, instance=update)
    if request.method == "POST":
        if not draft:
            form.add_error(None, "This update is published; clients have read it, so it can no longer change.")
        elif form.is_valid():
            try:
                cadence.save_weekly_update(update=form.save(commit=False), actor=request.user, request=request)
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Draft saved.")
                return redirect(
                    "engagements:update-edit",
                    org_slug=request.org.slug,
                    engagement_uuid=engagement.uuid,
                    update_uuid=update.uuid,
                )
    return _edit_page(request, engagement, update, form)


def _edit_page(request, engagement, update, form):
    draft = update.status == UpdateStatus.DRAFT
    return render(
        request,
        "engagements/update_edit.html",
        {
            "engagement": engagement,
            "update": update,
            "form": form,
            "draft": draft,
            "recipients": _recipients(request, engagement),
            "can_change": request.membership.can_write and draft,
        },
        status=400 if request.method == "POST" else 200,
    )


@org_view
@require_POST
def update_publish(request, engagement_uuid, update_uuid):
    """Publish what is on screen: the edit form's publish button posts the sections, saved first in the same
    transaction, so an edit not yet saved is never dropped (nor half-published when it is invalid)."""
    engagement = _engagement(request, engagement_uuid)
    update = _update(request, engagement, update_uuid)
    form = WeeklyUpdateForm(request.POST, instance=update)
    on_screen = update.status == UpdateStatus.DRAFT and any(name in request.POST for name in form.fields)
    if on_screen and not form.is_valid():
        return _edit_page(request, engagement, update, form)  # nothing published: the edits and their errors stay
    try:
        with transaction.atomic():
            if on_screen:
                update = cadence.save_weekly_update(update=form.save(commit=False), actor=request.user, request=request)
            cadence.publish_weekly_update(update=update, actor=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        n = len(_recipients(request, engagement))
        done = "Your edits were saved and published" if on_screen else "Published"
        messages.success(request, f"{done}. {n} stakeholder{'s' if n != 1 else ''} will receive it by email.")
    return redirect(
        "engagements:update-edit", org_slug=request.org.slug, engagement_uuid=engagement.uuid, update_uuid=update.uuid
    )
