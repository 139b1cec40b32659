"""Parse and validate playbook files. Pure functions: no Django, no database.

``load_playbook_file`` raises ``PlaybookFileError`` for anything wrong with a file; its message names
the file, the dotted path of the first problem (``phases[1].sub_phases[0].checklist[3].key``; for
YAML syntax errors ``line 12, column 5``) and what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from playbooks.schema import Playbook, PlaybookIntegrityError

LIBRARY_DIR = Path(__file__).resolve().parent / "library"


class PlaybookFileError(Exception):
    def __init__(self, file: str | Path, path: str, message: str) -> None:
        self.file = str(file)
        self.path = path
        self.message = message
        super().__init__(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_loc(loc: Iterable[str | int]) -> str:
    """('phases', 1, 'sub_phases', 0, 'key') -> 'phases[1].sub_phases[0].key'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _yaml_error(file: Path, exc: yaml.YAMLError) -> PlaybookFileError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    path = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return PlaybookFileError(file, path, message)


def _describe(error: Any) -> tuple[str, str]:
    """(dotted path, clear message) for one pydantic error dict."""
    loc = list(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, PlaybookIntegrityError):
        return format_loc([*loc, *cause.loc]), cause.message
    got = error.get("input")
    if kind == "extra_forbidden":
        return format_loc(loc), f"unknown key '{loc[-1]}' (not allowed here; check the spelling)"
    if kind == "missing":
        return format_loc(loc), f"required key '{loc[-1]}' is missing"
    message = error["msg"]
    if kind in {"value_error", "assertion_error"} and cause is not None:
        message = str(cause)
    elif kind in {"literal_error", "string_pattern_mismatch", "enum"} or kind.endswith(("_type", "_parsing")):
        message = f"{message} (got {got!r})"
    return format_loc(loc), message


def parse_playbook(data: Any, file: str | Path = "<data>") -> Playbook:
    """Validate already-parsed YAML data."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise PlaybookFileError(
            file, "", f"a playbook file must be a YAML mapping at the top level (got {kind})"
        )
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        path, message = _describe(exc.errors()[0])
        raise PlaybookFileError(file, path, message) from None


def load_playbook_file(path: str | Path) -> Playbook:
    """Read one YAML playbook file and validate it. Parsed once per file version: treat the result as read-only."""
    file = Path(path)
    try:
        stat = file.stat()
    except OSError:
        return _load_playbook_file(file)
    return _cached_load(file.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _cached_load(file: Path, mtime_ns: int, size: int) -> Playbook:
    return _load_playbook_file(file)


def _load_playbook_file(file: Path) -> Playbook:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookFileError(file, "", f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PlaybookFileError(file, "", f"file is not UTF-8: {exc}") from None
    return parse_playbook_text(text, file)


def parse_playbook_text(text: str, file: str | Path = "<text>") -> Playbook:
    """Parse and validate YAML text (a library file, or an organization's edited copy)."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise _yaml_error(Path(str(file)), exc) from None
    return parse_playbook(data, file)


def load_library(directory: str | Path | None = None) -> list[Playbook]:
    """Load every ``*.yaml`` in the library directory, sorted by file name.

    Each file's ``key`` must equal its file name (without ``.yaml``) and keys are unique.
    """
    root = Path(directory) if directory is not None else LIBRARY_DIR
    playbooks = []
    for file in sorted(root.glob("*.yaml")):
        playbook = load_playbook_file(file)
        if playbook.key != file.stem:
            raise PlaybookFileError(
                file, "key", f"key '{playbook.key}' should match the file name '{file.stem}'"
            )
        playbooks.append(playbook)
    return playbooks


def canonical_json(playbook: Playbook) -> str:
    """Canonical JSON of the validated content: sorted keys, no whitespace, defaults left out.

    Leaving defaults out keeps the hash stable when the schema gains a new optional field and when an
    author writes a default explicitly (``critical: false``).
    """
    data = playbook.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(playbook: Playbook) -> str:
    """SHA-256 hex digest of ``canonical_json``: equal content, equal hash, whatever the YAML layout."""
    return hashlib.sha256(canonical_json(playbook).encode("utf-8")).hexdigest()
