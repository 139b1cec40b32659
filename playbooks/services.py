"""Loading the library, cloning a playbook into an organization and saving an organization's edits."""

import yaml
from django.db import transaction

from accounts import activity, data_version
from accounts.models import DomainError, Organization

from .loader import PlaybookFileError, content_hash, load_library, parse_playbook_text
from .models import Playbook, PlaybookVersion
from .schema import Playbook as PlaybookSpec


def _dump(spec: PlaybookSpec) -> dict:
    return spec.model_dump(mode="json", exclude_defaults=True)


@transaction.atomic
def save_version(*, playbook: Playbook, spec: PlaybookSpec, actor=None) -> tuple[PlaybookVersion, bool]:
    """Store `spec` as the playbook's next version unless the latest version has the same content."""
    digest = content_hash(spec)
    latest = Playbook.objects.for_org(playbook.organization).select_for_update().get(pk=playbook.pk).latest_version()
    if latest is not None and latest.content_hash == digest:
        return latest, False
    version = PlaybookVersion.objects.create(
        playbook=playbook,
        number=(latest.number + 1) if latest else 1,
        label=str(spec.version),
        content=_dump(spec),
        content_hash=digest,
        created_by=actor,
    )
    if playbook.name != spec.name:
        playbook.name = spec.name
        playbook.save(update_fields=["name"])
        data_version.bump(playbook.organization)  # engagement pages show the name (None: a library playbook)
    return version, True


@transaction.atomic
def load_library_playbooks(directory=None) -> list[tuple[PlaybookVersion, bool]]:
    """Validate every library file first, then write: a bad file leaves the database untouched."""
    results = []
    for spec in load_library(directory):
        playbook, _ = Playbook.objects.get_or_create(
            organization=None, key=spec.key, defaults={"name": spec.name, "framework": spec.framework}
        )
        results.append(save_version(playbook=playbook, spec=spec))
    return results


@transaction.atomic
def clone_playbook(*, source: Playbook, organization: Organization, actor, request=None) -> Playbook:
    version = source.latest_version()
    if version is None:
        raise DomainError(f"{source} has no version to copy.")
    key = f"{source.key}-copy"
    n = 2
    while Playbook.objects.filter(organization=organization, key=key).exists():
        key, n = f"{source.key}-copy-{n}", n + 1
    spec = version.spec.model_copy(update={"key": key, "name": f"{source.name} ({organization.name})"})
    copy = Playbook.objects.create(
        organization=organization, key=key, name=spec.name, framework=source.framework, cloned_from=source
    )
    save_version(playbook=copy, spec=spec, actor=actor)
    activity.record(
        organization=organization,
        actor=actor,
        verb="playbook.cloned",
        target=copy,
        request=request,
        data={"from": str(source.uuid)},
    )
    return copy


def as_yaml(version: PlaybookVersion) -> str:
    # From the parsed spec, not the stored JSON: PostgreSQL's jsonb does not keep the authors' key order.
    content = version.spec.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=110)


@transaction.atomic
def save_edited_playbook(*, playbook: Playbook, text: str, actor, request=None) -> tuple[PlaybookVersion, bool]:
    """Validate an organization's edited YAML and store it as a new version. Library playbooks are read-only."""
    if playbook.is_library:
        raise DomainError("Library playbooks are read-only: clone it into your organization to edit a copy.")
    spec = parse_playbook_text(text, file=playbook.key)
    if spec.key != playbook.key:
        raise PlaybookFileError(playbook.key, "key", f"the key of this copy is '{playbook.key}'; it cannot change")
    version, created = save_version(playbook=playbook, spec=spec, actor=actor)
    if created:
        activity.record(
            organization=playbook.organization,  # type: ignore[arg-type]  # a library playbook was refused above
            actor=actor,
            verb="playbook.edited",
            target=playbook,
            request=request,
            data={"version": version.number},
        )
    return version, created
