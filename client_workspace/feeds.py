"""What intake answers prefill: the CRM connector to suggest, the pipelines and current stage definitions to keep
beside the draft definitions. Read from the client's own answers, submitted or still in progress."""

from dataclasses import dataclass

from engagements.models import ClientAccount, Engagement

from .models import IntakeAnswer, IntakeFile, IntakeForm

CONNECTORS = {"Salesforce": "salesforce", "HubSpot": "hubspot"}  # an intake choice -> CrmConnection.kind


@dataclass
class CrmSuggestion:
    answer: str  # as the client chose it
    kind: str  # the connector, "" when we have none for it ("Other")
    form: IntakeForm


def _feeding(form: IntakeForm, feed: str):
    return next((f for f in form.fields if f.feeds == feed), None)


def suggested_crm(client: ClientAccount) -> CrmSuggestion | None:
    """The CRM platform the client named in its most recent intake answer, if any."""
    forms = IntakeForm.objects.filter(engagement__client=client, organization=client.organization)
    for form in forms.select_related("engagement").order_by("-engagement__start_date", "-created_at"):
        field = _feeding(form, "crm_platform")
        answer = field and form.answers.filter(field_key=field.key).first()
        if answer:
            return CrmSuggestion(answer=answer.value, kind=CONNECTORS.get(answer.value, ""), form=form)
    return None


@dataclass
class DefinitionsInputs:
    form: IntakeForm
    pipelines_label: str = ""
    pipelines_columns: list[str] | None = None
    pipelines: list[list] | None = None  # the table's rows, cells in its columns' order
    definitions_label: str = ""
    definitions: list[IntakeFile] | None = None


def definitions_inputs(engagement: Engagement) -> DefinitionsInputs | None:
    form = IntakeForm.objects.filter(engagement=engagement).first()
    if form is None:
        return None
    inputs = DefinitionsInputs(form=form)
    pipelines, definitions = _feeding(form, "pipelines"), _feeding(form, "current_definitions")
    if pipelines is not None:
        answer = IntakeAnswer.objects.filter(form=form, field_key=pipelines.key).first()
        inputs.pipelines_label = pipelines.label
        inputs.pipelines_columns = [c.label for c in pipelines.columns]
        if answer is not None:
            inputs.pipelines = [[row.get(c.key) for c in pipelines.columns] for row in answer.value]
    if definitions is not None:
        inputs.definitions_label = definitions.label
        inputs.definitions = list(form.files.filter(field_key=definitions.key))
    return inputs
