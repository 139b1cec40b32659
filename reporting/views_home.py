"""The organization's home: the consultant's day. It shows work from every app (engagements, sign-offs, health
checks), so it lives in the highest one; gtm_ops/urls.py routes it under accounts' URL name `accounts:org-home`."""

from django.shortcuts import render
from django.utils import timezone

from accounts import activity_words
from accounts.access import org_view
from accounts.models import ActivityEntry
from engagements import home
from engagements.models import ClientAccount

from .home import client_tasks_overdue, red_flags

RECENT = 10


@org_view
def org_home(request):
    today, org = timezone.localdate(), request.org
    ids, mine = home.in_view(org, request.user)
    period, flags = red_flags(org, ids, today)
    recent = list(ActivityEntry.objects.for_org(org)[:RECENT])
    for entry in recent:
        entry.sentence = activity_words.sentence(entry)
    context = {
        "mine": mine,
        "engagements": home.engagements(org, ids, today),
        "gates": home.gates_awaiting_decision(org, ids),
        "signoffs": home.signoffs_outstanding(org, ids, timezone.now()),
        "flag_period": period,
        "flags": flags,
        "client_tasks_overdue": client_tasks_overdue(org, ids, today),
        "recent": recent,
        "has_clients": bool(ids) or ClientAccount.objects.for_org(org).exists(),
    }
    return render(request, "accounts/org_home.html", context)
