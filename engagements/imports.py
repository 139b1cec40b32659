"""CSV uploads: decoded with line-and-column errors, imported in the request when small, by a worker when large.

A file of at most SYNC_MAX_LINES data lines is imported inside the request: it takes well under a second, and the
page answers with the result at once. A larger one is saved as a CsvImport and queued; the page then polls a
progress fragment until the worker is done. Either way the import is all or nothing: every line is checked first
(the first bad one is named), then every row is written in one transaction.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import DomainError

from .models import CsvImport, Engagement

SYNC_MAX_LINES = 200
PROGRESS_EVERY = 100  # lines checked between two progress writes: cheap, and still moves the bar smoothly


def decode(data: bytes) -> str:
    """The text of an uploaded CSV; bytes that are not UTF-8 text and NUL bytes are named by line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start, b"\n")
        raise DomainError(
            f"Line {line}: the file has bytes that are not UTF-8 text (column {column}); save it as CSV (UTF-8)."
        ) from None
    if "\x00" in text:
        line, column = _position(text, text.index("\x00"), "\n")
        raise DomainError(
            f"Line {line}: the file contains a NUL byte (column {column}), so it is not CSV text; "
            "save it as CSV (UTF-8)."
        )
    return text


def _position(data, offset: int, newline) -> tuple[int, int]:
    """1-based line and column of an offset (a column counts bytes in bytes, characters in text)."""
    line_start = data.rfind(newline, 0, offset) + 1
    return data.count(newline, 0, offset) + 1, offset - line_start + 1


def data_lines(text: str) -> int:
    """Lines after the header that hold something (the progress counts these)."""
    return sum(1 for line in text.splitlines()[1:] if line.strip())


def start(
    *, engagement: Engagement, kind: str, text: str, file_name: str, actor, task, run_now: Callable[[], int]
) -> int | CsvImport:
    """Import a small file now (returns the count), or save a large one and queue `task` (returns the CsvImport)."""
    lines = data_lines(text)
    if lines <= SYNC_MAX_LINES:
        return run_now()
    with transaction.atomic():
        job = CsvImport.objects.create(
            organization=engagement.organization,
            engagement=engagement,
            kind=kind,
            text=text,
            lines=lines,
            file_name=file_name[:255],
            created_by=actor,
        )
        transaction.on_commit(lambda: task.delay(job.pk))
    return job


def run(job_id: int, *, kind: str, check: Callable[..., Any], save: Callable[..., int]) -> None:
    """The worker's side: claim the import, check every line (counting progress), write it all, record the end.

    check(job, progress) returns what save(job, checked) writes in one transaction; either raises DomainError for
    bad input, which fails the import with that message and writes nothing.
    """
    job = CsvImport.objects.for_task(job_id).filter(kind=kind).select_related("engagement", "created_by").first()
    if job is None or not job.claim():
        return  # finished already, or another worker has it

    def progress(checked: int) -> None:
        if checked % PROGRESS_EVERY == 0:
            job.progress(checked)

    try:
        rows = check(job, progress)
        job.progress(job.lines)
        imported = save(job, rows)
    except DomainError as exc:
        job.fail(f"Nothing was imported. {exc}")
        return
    except Exception:
        job.fail("Nothing was imported: the import stopped on an unexpected error. Upload the file again.")
        raise
    job.succeed(imported)


SHOWN_FOR = timedelta(minutes=30)


def shown(engagement: Engagement, kind: str) -> list[CsvImport]:
    """The imports a page shows next to its upload form: running ones, and those that ended in the last half hour."""
    recent = Q(finished_at__isnull=True) | Q(finished_at__gte=timezone.now() - SHOWN_FOR)
    return list(engagement.csv_imports.filter(kind=kind).filter(recent).defer("text")[:3])
