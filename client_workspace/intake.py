"""The intake form: reading answers from the portal's form, saving them as the client goes, submitting.

Answers are stored per field as they are given (a half-filled form survives leaving the portal); submitting checks
that every required field is answered and, when it is, completes the customer's checklist item the playbook names.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import activity
from accounts.models import DomainError
from engagements.client_tasks import complete_client_task
from engagements.models import ChecklistItem, Engagement
from playbooks.schema import IntakeColumn, IntakeField

from .models import IntakeAnswer, IntakeFile, IntakeForm, IntakeStatus

TEXT_LIMIT = 5000  # characters in one answer: a pasted essay is fine, a pasted database is not
TABLE_ROWS_LIMIT = 200
YES_NO = {"yes": True, "no": False}


class AnswerError(DomainError):
    """An answer that cannot be stored as given; the message names the field (and row and column)."""


def copy_intake_form(sender=None, *, engagement: Engagement, **kwargs) -> IntakeForm | None:
    """Copy the playbook version's intake form into the engagement (receiver of engagement_created)."""
    intake = engagement.playbook_version.spec.intake
    if intake is None:
        return None
    return IntakeForm.objects.create(
        organization=engagement.organization, engagement=engagement, spec=intake.model_dump(mode="json")
    )


def form_of(engagement: Engagement) -> IntakeForm | None:
    """The engagement's form; one started before intake forms existed gets its pinned playbook version's now."""
    form = IntakeForm.objects.for_org(engagement.organization_id).filter(engagement=engagement).first()
    return form or copy_intake_form(engagement=engagement)


# --------------------------------------------------------------------------------------------------
# Reading one field's answer from posted form data


def input_name(field_key: str, row: int | None = None, column: str | None = None) -> str:
    return field_key if row is None else f"{field_key}__{row}__{column}"


def _number(raw: str, where: str) -> int | float:
    try:
        value = float(raw.replace(",", "").strip())
    except ValueError:
        raise AnswerError(f"{where} needs a number (got “{raw}”).") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AnswerError(f"{where} needs a number (got “{raw}”).")
    if value < 0:  # sizes, counts and money: a negative one is a typing slip
        raise AnswerError(f"{where} cannot be negative (got {raw}).")
    return int(value) if value.is_integer() else value


def _choice(raw: str, choices: list[str], where: str) -> str:
    if raw not in choices:
        raise AnswerError(f"{where}: “{raw}” is not one of the choices ({', '.join(choices)}).")
    return raw


def _text(raw: str, where: str) -> str:
    if len(raw) > TEXT_LIMIT:
        raise AnswerError(f"{where} is {len(raw)} characters long; the limit is {TEXT_LIMIT}.")
    return raw


def _cell(column: IntakeColumn, raw: str, where: str):
    if column.type == "number":
        return _number(raw, where)
    if column.type == "choice":
        return _choice(raw, column.choices, where)
    return _text(raw, where)


def _table(field: IntakeField, data) -> list[dict] | None:
    # Inputs are named <field>__<row>__<column>; the row numbers are whatever the page rendered.
    parts = [name.split("__") for name in data if name.startswith(f"{field.key}__")]
    rows = sorted({int(p[1]) for p in parts if len(p) == 3 and p[1].isdigit()})
    if len(rows) > TABLE_ROWS_LIMIT:
        raise AnswerError(f"“{field.label}” has {len(rows)} rows; the limit is {TABLE_ROWS_LIMIT}.")
    table: list[dict] = []
    for row in rows:
        cells = {c.key: data.get(input_name(field.key, row, c.key), "").strip() for c in field.columns}
        if not any(cells.values()):
            continue  # the spare blank rows the page offers
        number = len(table) + 1
        table.append(
            {
                c.key: _cell(c, cells[c.key], f"“{field.label}”, row {number}, {c.label}") if cells[c.key] else None
                for c in field.columns
            }
        )
    return table or None


def read_answer(field: IntakeField, data):
    """The field's answer from posted data (a QueryDict), or None when it is left empty."""
    where = f"“{field.label}”"
    if field.type == "table":
        return _table(field, data)
    if field.type == "multi_choice":
        picked = [_choice(v, field.choices, where) for v in data.getlist(field.key) if v]
        return [c for c in field.choices if c in picked] or None  # in the form's order, each once
    raw = data.get(field.key, "").strip()
    if not raw:
        return None
    if field.type == "number":
        return _number(raw, where)
    if field.type == "choice":
        return _choice(raw, field.choices, where)
    if field.type == "yes_no":
        if raw not in YES_NO:
            raise AnswerError(f"{where} takes yes or no (got “{raw}”).")
        return YES_NO[raw]
    return _text(raw, where)


# --------------------------------------------------------------------------------------------------
# Saving and submitting


def field_of(form: IntakeForm, key: str) -> IntakeField:
    for field in form.fields:
        if field.key == key:
            return field
    raise AnswerError(f"{form.name} has no field “{key}”.")


def require_open(form: IntakeForm) -> None:
    if form.is_submitted:
        submitted = f"{form.submitted_at:%d %b %Y}"
        raise DomainError(f"{form.name} was submitted on {submitted}: ask your consultant to reopen it for changes.")


def answers_of(form: IntakeForm) -> dict:
    return {a.field_key: a.value for a in form.answers.all()}


def files_of(form: IntakeForm) -> dict[str, list[IntakeFile]]:
    files: dict[str, list[IntakeFile]] = {}
    for file in form.files.all():
        files.setdefault(file.field_key, []).append(file)
    return files


def _store(form: IntakeForm, field: IntakeField, value, stakeholder) -> None:
    if value is None:
        form.answers.filter(field_key=field.key).delete()
    else:
        IntakeAnswer.objects.update_or_create(
            organization=form.organization,
            form=form,
            field_key=field.key,
            defaults={"value": value, "answered_by": stakeholder},
        )


@transaction.atomic
def save_answer(*, form: IntakeForm, field_key: str, data, stakeholder) -> IntakeField:
    """Save one field as the client leaves it (htmx on change). An empty field removes its answer."""
    form = IntakeForm.objects.select_for_update().get(pk=form.pk, organization=form.organization)
    require_open(form)
    field = field_of(form, field_key)
    if field.type == "file":
        raise AnswerError(f"“{field.label}” takes a file: upload it.")
    _store(form, field, read_answer(field, data), stakeholder)
    return field


def missing_required(form: IntakeForm) -> list[IntakeField]:
    answered = set(form.answers.values_list("field_key", flat=True))
    uploaded = set(form.files.values_list("field_key", flat=True))
    return [f for f in form.fields if f.required and f.key not in (uploaded if f.type == "file" else answered)]


@dataclass
class Submission:
    errors: dict[str, str]  # field key -> why its answer was not stored
    missing: list[IntakeField]

    @property
    def submitted(self) -> bool:
        return not self.errors and not self.missing


def save_posted(*, form: IntakeForm, data, stakeholder) -> dict[str, str]:
    """Store every answer posted with the whole form; field key -> why its answer was not stored. Each is saved in
    its own transaction, so one bad answer keeps the others."""
    errors: dict[str, str] = {}
    for field in form.fields:
        if field.type == "file":
            continue
        try:
            save_answer(form=form, field_key=field.key, data=data, stakeholder=stakeholder)
        except AnswerError as exc:
            errors[field.key] = str(exc)
    return errors


def submit(*, form: IntakeForm, data, stakeholder, request=None) -> Submission:
    """Store every answer posted with the form, then submit it if every required field is answered.

    Answers are kept whatever happens (each is saved in its own transaction): a form sent back for a missing field
    comes back with everything the client already gave.
    """
    errors = save_posted(form=form, data=data, stakeholder=stakeholder)
    missing = missing_required(form)
    result = Submission(errors=errors, missing=missing)
    if result.submitted:
        _mark_submitted(form, stakeholder, request)
    return result


@transaction.atomic
def _mark_submitted(form: IntakeForm, stakeholder, request) -> None:
    form = IntakeForm.objects.select_for_update().get(pk=form.pk, organization=form.organization)
    require_open(form)
    form.status, form.submitted_at, form.submitted_by = IntakeStatus.SUBMITTED, timezone.now(), stakeholder
    form.save(update_fields=["status", "submitted_at", "submitted_by"])
    activity.record(
        organization=form.organization,
        actor_label=f"{stakeholder.name} <{stakeholder.email}>",
        verb="intake.submitted",
        target=form.engagement,
        request=request,
        data={"form": form.name},
    )
    item = (
        ChecklistItem.objects.for_org(form.organization_id)
        .filter(engagement=form.engagement, key=form.definition.completes)
        .first()
    )
    if item is not None and not item.done:
        try:
            complete_client_task(
                item,
                auto_reason=f"{stakeholder.name} submitted the {form.name} with every required field filled.",
                request=request,
            )
        except DomainError:  # its phase is done or skipped: the checklist keeps the item as it is
            pass


@transaction.atomic
def reopen(*, form: IntakeForm, actor, request=None) -> None:
    """A consultant hands a submitted form back to the client for changes."""
    form = IntakeForm.objects.select_for_update().get(pk=form.pk, organization=form.organization)
    if not form.is_submitted:
        return
    form.status, form.submitted_at, form.submitted_by = IntakeStatus.OPEN, None, None
    form.save(update_fields=["status", "submitted_at", "submitted_by"])
    activity.record(
        organization=form.organization,
        actor=actor,
        verb="intake.reopened",
        target=form.engagement,
        request=request,
        data={"form": form.name},
    )
