"""The API keeps its contract: schemathesis generates requests for every operation of /api/v1/schema/ and checks that
none answers a server error and that every answer (status code, content type, headers, body) is what the schema
documents.

Requests carry `Authorization: Token` of a user who owns an organization with a client, a stakeholder who was asked
to sign a definition version (so deleting them must answer 409, not 500) and published definitions. Path parameters
that name the organization are pinned to that organization, so the generated requests reach its data instead of
stopping at 404.

The budget is bounded for CI on two cores: one test (the data is set up once), EXAMPLES_PER_OPERATION generated cases
per operation from a fixed seed (the same cases on every run), no shrinking. Each case runs in a savepoint rolled back
after it, so a DELETE does not change what the next case sees, and every failure of every operation is reported.
"""

from datetime import date

import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from engagements import definitions, progression
from gtm_ops.wsgi import application
from playbooks.models import Playbook
from tests.conftest import ensure_library

EXAMPLES_PER_OPERATION = 5


def schema_valid_input_is_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, but for a 400 whose body is `detail` alone: a move the current state
    refuses ("nothing changed since v1", "connect the CRM first"), documented as such in every operation's 400. No
    schema can say in advance when a state refuses; a 400 keyed by field (input the schema should have refused)
    still fails. The token endpoint documents 400 for wrong credentials, which are schema-valid by nature."""
    if response.status_code == 400 and (case.operation.label == "POST /api/v1/auth/token/" or _state_refusal(response)):
        return None
    return positive_data_acceptance(ctx, response, case)


def _state_refusal(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"detail"}


# Rules no schema can state: a new engagement's shape and methodology option come from the playbook it names, its
# target date follows its start date, its team are members of the organization and each stakeholder is named once.
# Its requests take the playbook's "none" for both, no target date, no team and no stakeholders.
CROSS_FIELD_PINS = {
    "POST /api/v1/o/{org_slug}/engagements/": {
        "shape": "", "methodology_option": "", "target_date": None, "team": [], "stakeholders": [],
    },
}  # fmt: skip


def pin_references(value, references: dict):
    """Every field of a generated body that names another object (at any depth) names a real one of the org."""
    if isinstance(value, dict):
        for key in value:
            value[key] = references[key] if key in references else pin_references(value[key], references)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            value[n] = pin_references(item, references)
    return value


# The schema as the app serves it (no database needed to read it).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


def seeded_data(cast) -> tuple[str, dict]:
    """The owner's token, and the objects a request body may name (by field), so that generated requests name
    objects that exist instead of stopping at "does not exist"."""
    ensure_library()
    playbook_version = Playbook.objects.library().get(key="gtm-lifecycle").latest_version()
    engagement = progression.create_engagement(
        client=cast.client,
        playbook_version=playbook_version,
        name="Lifecycle rebuild",
        start_date=date(2026, 11, 2),
        actor=cast.owner,
    )
    version = definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.owner)
    references = {
        "engagement": str(engagement.uuid),
        "client": str(cast.client.uuid),
        "playbook_version": str(playbook_version.uuid),
        "gate": str(engagement.gates.first().uuid),
        "stakeholder": str(cast.stakeholder.uuid),
        "signers": [str(cast.stakeholder.uuid)],
        "source_version": str(version.uuid),
    }
    return Token.objects.create(user=cast.owner).key, references


def test_every_operation_keeps_its_contract(db, cast, settings):
    # Throttles off: thousands of generated requests from one token are the test, not abuse. Rates are read per request.
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": None, "anon": None}}
    token, references = seeded_data(cast)
    headers = {"Authorization": f"Token {token}"}
    # Requests run inside the test's transaction; like Django's test client, keep the connection open between them.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    failures, operations = [], 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def keeps_its_contract(case):
                if "org_slug" in (case.path_parameters or {}):
                    case.path_parameters["org_slug"] = cast.org.slug
                pin_references(case.body, {**references, **CROSS_FIELD_PINS.get(case.operation.label, {})})
                with transaction.atomic():
                    try:
                        case.call_and_validate(
                            headers=headers,
                            excluded_checks=[positive_data_acceptance],
                            additional_checks=[schema_valid_input_is_accepted],
                        )
                    finally:
                        transaction.set_rollback(True)

            try:
                keeps_its_contract()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group of every distinct failure
                failures.append(f"{operation.label}: {exc}")
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert operations > 80  # the schema was read: every operation of the API, not an empty list
    assert not failures, f"{len(failures)} of {operations} operations break the contract:\n\n" + "\n\n".join(failures)
