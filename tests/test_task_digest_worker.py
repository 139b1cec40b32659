"""The overdue-task digest on a real Celery worker (Redis) and a real SMTP server: two beat ticks the same day send
one email per stakeholder."""

from datetime import date, timedelta

from django.utils import timezone

from engagements import client_tasks, progression
from engagements.models import ChecklistItem, EngagementStakeholder, TaskDigest
from engagements.tasks import send_task_digests
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from tests.conftest import body_text, make_stakeholder, wait_until


def test_two_beat_ticks_send_one_digest_per_stakeholder(cast, celery_worker, smtp, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    load_library_playbooks()
    tom = make_stakeholder(cast.client, "Tom Becker", "tom@acme.example")
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        stakeholders=[(cast.stakeholder, "Approver"), (tom, "Champion")],
    )
    today = timezone.localdate()
    tasks = list(ChecklistItem.objects.filter(engagement=engagement).client_owned().order_by("order"))
    for task, days in zip(tasks, (3, 1), strict=False):
        client_tasks.set_due_date(item=task, due_date=today - timedelta(days=days), actor=cast.consultant)

    send_task_digests.delay()
    send_task_digests.delay()  # a duplicate tick (two beats, or a redelivered message)
    smtp.wait_for(2, timeout=90)
    wait_until(lambda: TaskDigest.objects.for_org(cast.org).filter(sent_at__isnull=False).count() == 2, what="sent")
    # Rita joins later the same day: the next tick sends her digest, and hers is queued after Maya's and Tom's second
    # attempts, so once it arrives those have run (one solo worker takes tasks in order) and sent nothing.
    rita = make_stakeholder(cast.client, "Rita Gomez", "rita@acme.example")
    EngagementStakeholder.objects.create(organization=cast.org, engagement=engagement, stakeholder=rita)
    send_task_digests.delay()
    smtp.wait_for(3, timeout=60)
    wait_until(lambda: TaskDigest.objects.for_org(cast.org).filter(sent_at__isnull=False).count() == 3, what="sent")
    assert sorted(m["To"] for m in smtp.messages) == ["maya@acme.example", "rita@acme.example", "tom@acme.example"]
    text = body_text(smtp.to("maya@acme.example")[0])
    assert tasks[0].text in text and "3 days overdue" in text and "1 day overdue" in text
    assert {(d.stakeholder_id, d.day, d.tasks) for d in TaskDigest.objects.for_org(cast.org)} == {
        (cast.stakeholder.pk, today, 2),
        (tom.pk, today, 2),
        (rita.pk, today, 2),
    }
