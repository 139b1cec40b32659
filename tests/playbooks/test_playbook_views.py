"""The playbook browser: library and own copies, reading versions, cloning, editing a copy's YAML."""

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ActivityEntry
from playbooks.models import Playbook, PlaybookVersion
from playbooks.services import as_yaml, clone_playbook
from tests.conftest import ensure_library


@pytest.fixture
def library(db) -> dict:
    ensure_library()
    return {p.key: p for p in Playbook.objects.library()}


@pytest.fixture
def copy(cast, library):
    return clone_playbook(source=library["gtm-lifecycle"], organization=cast.org, actor=cast.owner)


@pytest.fixture
def theirs(cast, library):
    return clone_playbook(source=library["delivery-model"], organization=cast.other_org, actor=cast.outsider)


@pytest.fixture
def consultant(client, cast):
    client.force_login(cast.consultant)
    return client


def with_strategy_weight(text: str, weight: str) -> str:
    """The YAML with the first phase's weight changed (key order differs between SQLite and PostgreSQL's jsonb)."""
    data = yaml.safe_load(text)
    data["phases"][0]["weight"] = weight
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def url(name, org, playbook=None, **kwargs):
    if playbook is not None:
        kwargs["playbook_uuid"] = playbook.uuid
    return reverse(f"playbooks:{name}", kwargs={"org_slug": org.slug, **kwargs})


def test_list_shows_the_library_and_this_organizations_copies_only(consultant, cast, library, copy, theirs):
    response = consultant.get(url("playbook-list", cast.org))
    body = response.content.decode()
    assert response.status_code == 200
    assert {p.key for p in response.context["library"]} == set(library)
    assert [p.key for p in response.context["own"]] == ["gtm-lifecycle-copy"]
    assert "GTM Lifecycle — Implementation (Alpha Advisory)" in body and "Beta Partners" not in body
    assert "The end-to-end process for delivering GTM Lifecycle projects" in body, "summary of the latest version"
    assert url("playbook-clone", cast.org, library["delivery-model"]) in body


def test_list_empty_states(consultant, cast, no_library):
    body = consultant.get(url("playbook-list", cast.org)).content.decode()
    assert "No copies yet" in body and "The library is empty" in body


def test_detail_shows_phases_gates_options_terms_maintenance_rules_and_versions(consultant, cast, library):
    playbook = library["gtm-lifecycle"]
    response = consultant.get(url("playbook-detail", cast.org, playbook))
    body = response.content.decode()
    assert response.status_code == 200
    assert "1a Pre-Kickoff" in body and "Watch GTM Lifecycle intro video" in body
    assert "Gate: Strategic Sign-Off" in body and "Proceed to Engineering" in body and "Loop back" in body
    assert "Customer wants lifecycle stages configured in CRM" in body
    assert "Definitions to sign off" in body and "SQL" in body
    assert "Maintenance schedule" in body and "Monthly" in body and "source: crm" in body
    assert "Version 1" in body and "(shown)" in body
    assert "Library · read-only" in body and "Clone to edit" in body and "Edit YAML" not in body


def test_detail_query_count_does_not_grow_with_versions(consultant, cast, copy):
    path = url("playbook-detail", cast.org, copy)
    consultant.get(path)
    with CaptureQueriesContext(connection) as one:
        consultant.get(path)
    text = as_yaml(copy.latest_version())
    for n in range(2, 6):
        consultant.post(url("playbook-edit", cast.org, copy), {"text": text.replace("version: 1", f"version: {n}", 1)})
    assert copy.versions.count() == 5
    with CaptureQueriesContext(connection) as five:
        consultant.get(path)
    assert len(five) == len(one)


def test_reading_an_older_version(consultant, cast, copy):
    first = copy.latest_version()
    text = as_yaml(first).replace("name: GTM Lifecycle — Implementation (Alpha Advisory)", "name: Lifecycle (ours)")
    consultant.post(url("playbook-edit", cast.org, copy), {"text": text})
    response = consultant.get(url("playbook-version", cast.org, copy, playbook_version_uuid=first.uuid))
    body = response.content.decode()
    assert response.status_code == 200 and "You are reading <strong>version 1</strong>, not the latest" in body
    latest = consultant.get(url("playbook-detail", cast.org, copy)).content.decode()
    assert "Lifecycle (ours)" in latest and "not the latest" not in latest


def test_version_of_another_playbook_is_404(consultant, cast, library, copy):
    other = library["delivery-model"].latest_version()
    assert consultant.get(url("playbook-version", cast.org, copy, playbook_version_uuid=other.uuid)).status_code == 404


def test_cloning_a_library_playbook_makes_an_organization_copy(consultant, cast, library):
    response = consultant.post(url("playbook-clone", cast.org, library["revenue-intelligence"]))
    copy = Playbook.objects.get(organization=cast.org)
    assert response.status_code == 302 and response["Location"] == url("playbook-detail", cast.org, copy)
    assert copy.cloned_from == library["revenue-intelligence"] and copy.versions.count() == 1
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="playbook.cloned").count() == 1
    assert consultant.get(url("playbook-clone", cast.org, library["revenue-intelligence"])).status_code == 405


def test_edit_page_is_prefilled_with_the_latest_yaml(consultant, cast, copy):
    response = consultant.get(url("playbook-edit", cast.org, copy))
    assert response.status_code == 200
    assert response.context["form"]["text"].value() == as_yaml(copy.latest_version())
    assert 'class="code"' in response.content.decode()


def test_saving_an_edit_stores_a_new_version(consultant, cast, copy):
    text = as_yaml(copy.latest_version()).replace("Watch GTM Lifecycle intro video", "Watch our own intro video")
    response = consultant.post(url("playbook-edit", cast.org, copy), {"text": text}, follow=True)
    assert response.redirect_chain[-1][0] == url("playbook-detail", cast.org, copy)
    body = response.content.decode()
    assert "Saved as version 2" in body and "Watch our own intro video" in body
    assert copy.versions.count() == 2 and copy.latest_version().created_by == cast.consultant

    response = consultant.post(url("playbook-edit", cast.org, copy), {"text": text}, follow=True)
    assert "Nothing changed: version 2 is still the latest." in response.content.decode()
    assert copy.versions.count() == 2


def test_an_invalid_edit_shows_file_path_and_message_above_the_textarea(consultant, cast, copy):
    text = with_strategy_weight(as_yaml(copy.latest_version()), "enormous")
    response = consultant.post(url("playbook-edit", cast.org, copy), {"text": text})
    body = response.content.decode()
    assert response.status_code == 400 and copy.versions.count() == 1
    assert '<div class="file-error" id="file-error" role="alert">' in body
    assert "<code>gtm-lifecycle-copy</code>" in body
    assert "<code>phases[0].weight</code>" in body
    assert "enormous" in body and body.index("file-error") < body.index("<textarea")
    assert 'aria-describedby="file-error id_text_helptext"' in body
    assert "weight: enormous" in body, "the text being edited is kept"

    body = consultant.post(url("playbook-edit", cast.org, copy), {"text": "key: [unclosed"}).content.decode()
    assert "YAML syntax error" in body and "line 1" in body

    text = as_yaml(copy.latest_version()).replace("key: gtm-lifecycle-copy", "key: renamed", 1)
    body = consultant.post(url("playbook-edit", cast.org, copy), {"text": text}).content.decode()
    assert "the key of this copy is" in body


def test_library_playbooks_cannot_be_edited(consultant, cast, library):
    playbook = library["gtm-lifecycle"]
    response = consultant.get(url("playbook-edit", cast.org, playbook))
    assert response.status_code == 403 and "Library playbooks are read-only" in response.content.decode()
    response = consultant.post(url("playbook-edit", cast.org, playbook), {"text": "key: x"})
    assert response.status_code == 403 and PlaybookVersion.objects.filter(playbook=playbook).count() == 1


def test_another_organizations_copy_is_404_everywhere(consultant, cast, theirs):
    version = theirs.latest_version()
    assert consultant.get(url("playbook-detail", cast.org, theirs)).status_code == 404
    version_url = url("playbook-version", cast.org, theirs, playbook_version_uuid=version.uuid)
    assert consultant.get(version_url).status_code == 404
    assert consultant.get(url("playbook-edit", cast.org, theirs)).status_code == 404
    assert consultant.post(url("playbook-edit", cast.org, theirs), {"text": "x"}).status_code == 404
    assert consultant.post(url("playbook-clone", cast.org, theirs)).status_code == 404
    assert not Playbook.objects.filter(organization=cast.org).exists()


def test_a_viewer_reads_but_cannot_clone_or_edit(client, cast, library, copy):
    client.force_login(cast.viewer)
    body = client.get(url("playbook-detail", cast.org, copy)).content.decode()
    assert "Edit YAML" not in body and "Duplicate" not in body
    assert client.get(url("playbook-edit", cast.org, copy)).status_code == 200
    assert client.post(url("playbook-edit", cast.org, copy), {"text": "x"}).status_code == 403
    assert client.post(url("playbook-clone", cast.org, library["delivery-model"])).status_code == 403
    assert Playbook.objects.filter(organization=cast.org).count() == 1
