"""Client uploads: an allow-list of types, a size limit, the content sniffed against the declared type.

The declared type is the file name's extension; its first bytes must be what that type starts with (a PDF's
%PDF-, a PNG's signature, an Office file's zip holding that application's parts, text that decodes as UTF-8), so
a renamed executable or a script saved as .png is refused. Nothing is stored until every check has passed.
"""

import codecs
import hashlib
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts import activity
from accounts.models import DomainError

from .intake import field_of, require_open
from .models import IntakeFile, IntakeForm

SNIFF_BYTES = 8192


def _starts(signature: bytes):
    return lambda head, upload: head.startswith(signature)


def _office(part: str):
    """An Office Open XML file: a zip with [Content_Types].xml and the application's folder (xl/, word/)."""

    def sniff(head: bytes, upload) -> bool:
        if not head.startswith(b"PK\x03\x04"):
            return False
        upload.seek(0)
        try:
            with zipfile.ZipFile(upload) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return False
        finally:
            upload.seek(0)
        return "[Content_Types].xml" in names and any(n.startswith(part) for n in names)

    return sniff


def _text(head: bytes, upload) -> bool:
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)  # a cut character at the end is fine
    except UnicodeDecodeError:
        return False
    return True


# extension -> (content type served back, what the content must look like, the type in a sentence)
ALLOWED = {
    ".pdf": ("application/pdf", _starts(b"%PDF-"), "a PDF"),
    ".png": ("image/png", _starts(b"\x89PNG\r\n\x1a\n"), "a PNG image"),
    ".jpg": ("image/jpeg", _starts(b"\xff\xd8\xff"), "a JPEG image"),
    ".jpeg": ("image/jpeg", _starts(b"\xff\xd8\xff"), "a JPEG image"),
    ".csv": ("text/csv", _text, "a CSV file"),
    ".txt": ("text/plain", _text, "a text file"),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _office("xl/"), "an Excel workbook"),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _office("word/"),
        "a Word document",
    ),
}
ALLOWED_NAMES = "PDF, PNG, JPEG, CSV, XLSX, DOCX or TXT"


class FileRefused(DomainError):
    """The upload was refused and nothing was stored; the message says why in the client's words."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_upload(upload) -> tuple[str, str]:
    """(content type, SHA-256) of an acceptable upload, or FileRefused saying what is wrong with it."""
    name = upload.name or "the file"
    limit = settings.CLIENT_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise FileRefused(f"“{name}” is {_megabytes(upload.size)}; files can be at most {_megabytes(limit)}.")
    if upload.size == 0:
        raise FileRefused(f"“{name}” is empty.")
    extension = Path(name).suffix.lower()
    if extension not in ALLOWED:
        raise FileRefused(f"“{name}” is not a type we accept: upload a {ALLOWED_NAMES} file.")
    content_type, sniff, label = ALLOWED[extension]
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    if not sniff(head, upload):
        raise FileRefused(f"“{name}” is called {label} but its content is not one: nothing was stored.")
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return content_type, digest.hexdigest()


def store_intake_file(*, form: IntakeForm, field_key: str, upload, stakeholder, request=None) -> IntakeFile:
    field = field_of(form, field_key)
    if field.type != "file":
        raise FileRefused(f"“{field.label}” does not take a file.")
    content_type, sha256 = check_upload(upload)
    with transaction.atomic():
        form = IntakeForm.objects.select_for_update().get(pk=form.pk, organization=form.organization)
        require_open(form)
        stored = IntakeFile(
            organization=form.organization,
            engagement=form.engagement,
            form=form,
            field_key=field.key,
            name=Path(upload.name).name[:255],
            content_type=content_type,
            size=upload.size,
            sha256=sha256,
            uploaded_by=stakeholder,
        )
        stored.file.save(stored.name, upload, save=False)
        try:
            stored.save()
        except Exception:
            stored.file.delete(save=False)  # no orphan on disk when the row cannot be written
            raise
        activity.record(
            organization=form.organization,
            actor_label=f"{stakeholder.name} <{stakeholder.email}>",
            verb="intake.file_uploaded",
            target=form.engagement,
            request=request,
            data={"file": stored.name, "field": field.label, "sha256": sha256},
        )
    return stored


def remove_intake_file(*, file: IntakeFile, stakeholder, request=None) -> None:
    """The stakeholder takes back a file they uploaded, while the form is still open. The row goes at once; the
    bytes go after the commit, and only if no row still names them (a rolled-back removal keeps its file)."""
    if file.uploaded_by_id != stakeholder.pk:
        raise DomainError(f"“{file.name}” was uploaded by someone else: only they can remove it.")
    with transaction.atomic():
        form = IntakeForm.objects.select_for_update().get(pk=file.form_id, organization=file.organization)
        require_open(form)
        file.delete()
        activity.record(
            organization=form.organization,
            actor_label=f"{stakeholder.name} <{stakeholder.email}>",
            verb="intake.file_removed",
            target=form.engagement,
            request=request,
            data={"file": file.name, "field": field_of(form, file.field_key).label, "sha256": file.sha256},
        )
        transaction.on_commit(lambda: _delete_if_unreferenced(file))


def _delete_if_unreferenced(file: IntakeFile) -> None:
    name = file.file.name or ""
    if name and not IntakeFile.objects.for_org(file.organization_id).filter(file=name).exists():
        file.file.storage.delete(name)
