"""Definition alignment through the API: draft, publish, diff, status, deliverables."""

import subprocess
from datetime import date

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import ActivityEntry
from engagements import definitions, progression
from engagements.models import DefinitionVersion, EngagementStatus, Signature


def api_as(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_edit_draft_publish_diff_and_read_status(cast, engagement):
    api = api_as(cast.consultant)
    terms = api.get("/api/v1/o/alpha/terms/", {"engagement": str(engagement.uuid)}).json()["results"]
    assert len(terms) == 20
    mql = next(t for t in terms if t["key"] == "mql")
    published = api.post(
        "/api/v1/o/alpha/definition-versions/publish/",
        {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]},
        format="json",
    )
    assert published.status_code == 201, published.json()
    v1 = published.json()
    assert v1["number"] == 1 and v1["status"] == "awaiting signatures" and len(v1["content_hash"]) == 64

    response = api.patch(
        f"/api/v1/o/alpha/terms/{mql['uuid']}/", {"definition": "Score ≥ 60 and ICP fit."}, format="json"
    )
    assert response.status_code == 200
    v2 = api.post(
        "/api/v1/o/alpha/definition-versions/publish/",
        {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]},
        format="json",
    ).json()
    diff = api.get(f"/api/v1/o/alpha/definition-versions/{v2['uuid']}/diff/").json()
    assert diff["from"] == 1 and diff["to"] == 2
    [change] = diff["changes"]
    assert change["key"] == "mql" and change["fields"][0]["after"] == "Score ≥ 60 and ICP fit."

    version = DefinitionVersion.objects.across_tenants("test").get(uuid=v2["uuid"])
    first = version.items[0][0]
    definitions.sign(
        version=version,
        stakeholder=cast.stakeholder,
        decisions={k: ("no" if k == first else "yes") for k, _ in version.items},
        comments={first: "Too broad"},
    )
    detail = api.get(f"/api/v1/o/alpha/definition-versions/{v2['uuid']}/").json()
    assert detail["status"] == "contested"
    assert detail["contested_items"][0]["objections"] == [{"by": "maya@acme.example", "comment": "Too broad"}]
    assert detail["signatures"][0]["version_hash"] == v2["content_hash"]
    assert ActivityEntry.objects.for_org(cast.org).filter(verb="definitions.term_changed").count() == 1


def test_publish_refusals_are_400_with_messages(cast, engagement):
    api = api_as(cast.consultant)
    url = "/api/v1/o/alpha/definition-versions/publish/"
    response = api.post(
        url, {"engagement": str(engagement.uuid), "signers": [str(cast.other_stakeholder.uuid)]}, format="json"
    )
    assert response.status_code == 400 and "Unknown stakeholder" in str(response.json())
    response = api.post(
        url, {"engagement": str(engagement.uuid), "signers": [str(cast.sibling_stakeholder.uuid)]}, format="json"
    )
    assert response.status_code == 400 and "not a stakeholder of Acme Robotics" in response.json()["detail"]
    assert not DefinitionVersion.objects.across_tenants("test").exists()


def test_signing_is_not_possible_through_the_api(cast, engagement):
    api = api_as(cast.owner)
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    paths = [p for p in api.get("/api/v1/schema/").content.decode().splitlines() if "/sign" in p]
    assert paths == []
    assert not Signature.objects.across_tenants("test").exists()


@pytest.mark.django_db(transaction=True)  # the render is queued on commit
def test_artifacts_render_and_download(cast, engagement):
    api = api_as(cast.consultant)
    definitions.publish(engagement=engagement, signers=[cast.stakeholder], actor=cast.consultant)
    created = api.post(
        "/api/v1/o/alpha/artifacts/",
        {"engagement": str(engagement.uuid), "kind": "stage_reference_card"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    artifact = api.get(f"/api/v1/o/alpha/artifacts/{created.json()['uuid']}/").json()
    assert artifact["status"] == "done" and artifact["pages"] == 1
    pdf = b"".join(api.get(artifact["download_url"]).streaming_content)
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "Stage Reference Card" in text and "Acme Robotics" in text


def test_viewer_reads_but_cannot_edit_or_publish(cast, engagement):
    api = api_as(cast.viewer)
    term = api.get("/api/v1/o/alpha/terms/").json()["results"][0]
    assert api.patch(f"/api/v1/o/alpha/terms/{term['uuid']}/", {"term": "X"}, format="json").status_code == 403
    assert api.post("/api/v1/o/alpha/definition-versions/publish/", {}, format="json").status_code == 403


# --------------------------------------------------------------------------------------------------
# Draft edits follow references by key, as the page does

REFS = {"terms": "stage_keys", "stages": "term_keys"}  # the field of each kind that names items of the other
OTHER = {"terms": "stages", "stages": "terms"}


def draft_url(kind: str, uuid=None) -> str:
    name = kind[:-1]
    if uuid is None:
        return reverse(f"api:{name}-list", kwargs={"org_slug": "alpha"})
    return reverse(f"api:{name}-detail", kwargs={"org_slug": "alpha", f"{name}_uuid": uuid})


def listing(api, engagement, kind: str) -> list[dict]:
    body = api.get(draft_url(kind), {"engagement": str(engagement.uuid)}).json()
    assert body["next"] is None, "the draft fits on one page"
    return body["results"]


def link(api, engagement, kind: str) -> tuple[dict, list[dict], dict]:
    """Make the first two items of the other kind refer to the first item of `kind` (the second after a key of
    its own), through the API; returns the referred item, the referrers and one other item left alone."""
    item = listing(api, engagement, kind)[0]
    referrers, bystander = listing(api, engagement, OTHER[kind])[:2], listing(api, engagement, OTHER[kind])[2]
    own_key = listing(api, engagement, kind)[1]["key"]
    for refs, referrer in zip(([item["key"]], [own_key, item["key"]]), referrers, strict=True):
        response = api.patch(draft_url(OTHER[kind], referrer["uuid"]), {REFS[OTHER[kind]]: refs}, format="json")
        assert response.status_code == 200, response.json()
    return item, referrers, bystander


def publish(api, engagement, cast):
    return api.post(
        reverse("api:definition-version-publish", kwargs={"org_slug": "alpha"}),
        {"engagement": str(engagement.uuid), "signers": [str(cast.stakeholder.uuid)]},
        format="json",
    )


def dangling(content: dict) -> list[str]:
    terms, stages = {t["key"] for t in content["terms"]}, {s["key"] for s in content["stages"]}
    return [k for t in content["terms"] for k in t["stage_keys"] if k not in stages] + [
        k for s in content["stages"] for k in s["term_keys"] if k not in terms
    ]


@pytest.mark.parametrize("kind", ["terms", "stages"])
def test_renaming_a_key_through_the_api_follows_every_reference_and_publishing_succeeds(cast, engagement, kind):
    api = api_as(cast.consultant)
    item, referrers, bystander = link(api, engagement, kind)
    other_keys_before = {r["uuid"]: r[REFS[OTHER[kind]]] for r in listing(api, engagement, OTHER[kind])}
    renamed = f"{item['key']}-renamed"

    response = api.patch(draft_url(kind, item["uuid"]), {"key": renamed}, format="json")

    assert response.status_code == 200, response.json()
    after = {r["uuid"]: r[REFS[OTHER[kind]]] for r in listing(api, engagement, OTHER[kind])}
    first, second = referrers
    assert after[first["uuid"]] == [renamed]
    assert after[second["uuid"]] == [other_keys_before[second["uuid"]][0], renamed]
    assert after[bystander["uuid"]] == other_keys_before[bystander["uuid"]]
    published = publish(api, engagement, cast)
    assert published.status_code == 201, published.json()
    assert dangling(published.json()["content"]) == []


@pytest.mark.parametrize("kind", ["terms", "stages"])
@pytest.mark.parametrize("through", ["api", "page"])
def test_deleting_a_referenced_key_unlinks_it_the_same_way_on_the_page_and_through_the_api(
    cast, engagement, client, kind, through
):
    api = api_as(cast.consultant)
    item, referrers, _ = link(api, engagement, kind)
    before = definitions.draft_content(engagement)
    # What deleting must leave: the item gone, and its key gone from every list of references of the other kind.
    expected = {
        kind: [i for i in before[kind] if i["key"] != item["key"]],
        OTHER[kind]: [
            {**i, REFS[OTHER[kind]]: [k for k in i[REFS[OTHER[kind]]] if k != item["key"]]} for i in before[OTHER[kind]]
        ],
    }

    if through == "api":
        response = api.delete(draft_url(kind, item["uuid"]))
        assert response.status_code == 204
    else:
        client.force_login(cast.consultant)
        name = f"engagements:{kind[:-1]}-delete"
        url = reverse(name, args=["alpha", engagement.uuid, item["uuid"]])
        assert client.post(url).status_code == 302

    assert definitions.draft_content(engagement) == expected
    entry = ActivityEntry.objects.for_org(cast.org).get(verb=f"definitions.{kind[:-1]}_removed")
    assert entry.data["key"] == item["key"]
    assert publish(api, engagement, cast).status_code == 201


def test_api_edits_keep_keys_unique_and_items_in_their_engagement(cast, engagement, library):
    api = api_as(cast.consultant)
    first, second = listing(api, engagement, "terms")[:2]
    response = api.patch(draft_url("terms", second["uuid"]), {"key": first["key"]}, format="json")
    assert response.status_code == 400 and "must make a unique set" in response.json()["non_field_errors"][0]

    other = progression.create_engagement(
        client=cast.client,
        playbook_version=library["gtm-lifecycle"],
        name="Second",
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
    )
    moved = {"engagement": str(other.uuid), "key": "moved"}
    response = api.patch(draft_url("terms", second["uuid"]), moved, format="json")
    assert response.status_code == 400 and "cannot move" in response.json()["engagement"][0]
    assert listing(api, engagement, "terms")[1] == second


def test_a_closed_engagement_refuses_api_edits(cast, engagement):
    api = api_as(cast.consultant)
    term = listing(api, engagement, "terms")[0]
    engagement.status = EngagementStatus.CLOSED
    engagement.save(update_fields=["status"])
    response = api.patch(draft_url("terms", term["uuid"]), {"notes": "x"}, format="json")
    assert response.status_code == 400 and "closed" in response.json()["detail"]
    assert api.delete(draft_url("terms", term["uuid"])).status_code == 400
    assert listing(api, engagement, "terms")[0] == term
