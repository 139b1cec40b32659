"""The organization's home page shows what the apps above accounts have for it (clients, ...), without accounts
importing them: each registers a section, a callable request -> template context, from its AppConfig.ready()."""

from collections.abc import Callable

Section = Callable[..., dict]
_SECTIONS: list[Section] = []


def add_section(section: Section) -> None:
    if section not in _SECTIONS:
        _SECTIONS.append(section)


def sections_context(request) -> dict:
    context: dict = {}
    for section in _SECTIONS:
        context.update(section(request))
    return context
