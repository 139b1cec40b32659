# mypy: disable-error-code="attr-defined, misc"
# (the wall hooks QuerySet/Model internals, _chain, _clone, _hints, alters_data, that django-stubs does not declare)
"""The tenant wall's querysets, in the bottom layer so that every app (deliverables too) can guard its models.

The default manager of a tenant-owned model refuses to read or write rows unless the queryset says whose rows
it wants, so a forgotten `for_org(org)` fails in the first test that reaches it instead of leaking. A queryset
is scoped when it
  - pins the organization: `for_org(org)`, or a filter on `organization` (`organization=org`,
    `organization__slug=...`; an OR counts only if every branch pins it);
  - is reached from a loaded row: a related manager (`engagement.phases.all()`, prefetches), or a filter on a
    loaded row or a scoped queryset (`Finding.objects.filter(run=run)`, `playbook__in=Playbook.objects.for_org(o)`):
    that row was itself loaded under scope, so its children are the same tenant's;
  - says it crosses tenants: `across_tenants(reason)`, `for_task(pk)`, or code run inside
    `crossing_tenants(reason)` (the uniqueness checks, which must see every tenant's rows).
`_base_manager` (forward relations, refresh_from_db, saves, cascades) is Django's plain manager and stays
unrestricted: it only ever follows a row already in hand. A queryset used only as a subquery is not
evaluated on its own, so it is not checked; the outer query is.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Self

from django.db import models
from django.db.models import Q

_crossing: ContextVar[str | None] = ContextVar("crossing_tenants", default=None)


class UnscopedQuery(Exception):
    """A tenant-owned model was queried without saying whose rows: a leak waiting for a second tenant."""


@contextmanager
def crossing_tenants(reason: str) -> Iterator[None]:
    """Every tenant-owned query inside the block may cross tenants (for code that builds its own querysets)."""
    token = _crossing.set(_require_reason(reason))
    try:
        yield
    finally:
        _crossing.reset(token)


def _require_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("crossing tenants needs a reason saying why, e.g. across_tenants('beat: expire leases')")
    return reason


def _pins_scope(key: str, value) -> bool:
    field = key.split("__", 1)[0]
    if field in ("organization", "organization_id"):
        return not (key.endswith("__isnull") and not value)  # "has some organization" pins nothing
    if isinstance(value, models.Model):  # a loaded row of a tenant-owned model (a user, say, spans tenants)
        return not value._state.adding and issubclass(_queryset_class(value._meta.model), ScopedQuerySet)
    return isinstance(value, ScopedQuerySet) and value._is_scoped()


def _queryset_class(model) -> type:
    return getattr(model._default_manager, "_queryset_class", models.QuerySet)


def _q_pins_scope(q: Q) -> bool:
    if q.negated:
        return False
    pins = [
        _q_pins_scope(c) if isinstance(c, Q) else isinstance(c, tuple) and _pins_scope(*c)  # else an expression
        for c in q.children
    ]
    return any(pins) if q.connector == Q.AND else bool(pins) and all(pins)


class ScopedQuerySet(models.QuerySet):
    """A queryset that refuses to run until it is scoped (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tenant_scope: str | None = None  # why this queryset may run, once it may

    def across_tenants(self, reason: str) -> Self:
        """Every tenant's rows, on purpose: beat housekeeping, tasks handed an id, tests of the wall itself."""
        clone = self._chain()
        clone._tenant_scope = f"across tenants: {_require_reason(reason)}"
        return clone

    def for_task(self, pk) -> Self:
        """The one row a task was handed by id: loaded across tenants, then acted on within its organization."""
        return self.across_tenants("a task acts on the row it was handed by id").filter(pk=pk)

    def _is_scoped(self) -> bool:
        query = self.query  # applies a related manager's deferred filter first: it may scope the queryset
        return bool(
            self._tenant_scope or self._hints.get("instance") is not None or _crossing.get() or query.is_empty()
        )

    def _check_scope(self) -> None:
        if not self._is_scoped():
            name = self.model.__name__
            raise UnscopedQuery(
                f"{name} queried without an organization; use {name}.objects.for_org(org) or .across_tenants(reason)"
            )

    def _clone(self):
        clone = super()._clone()
        clone._tenant_scope = self._tenant_scope
        return clone

    def _filter_or_exclude_inplace(self, negate, args, kwargs):
        super()._filter_or_exclude_inplace(negate, args, kwargs)
        if not negate and _q_pins_scope(Q(*args, **kwargs)):
            self._tenant_scope = self._tenant_scope or "filtered by organization or a loaded row"

    def __and__(self, other):
        combined = super().__and__(other)
        combined._tenant_scope = self._tenant_scope or getattr(other, "_tenant_scope", None)
        return combined

    def __or__(self, other):
        combined = super().__or__(other)  # either side unscoped lets every tenant's rows in
        combined._tenant_scope = self._tenant_scope if getattr(other, "_tenant_scope", None) else None
        return combined

    # Every way a queryset reaches the database: reads, counts, writes.
    def _fetch_all(self):
        if self._result_cache is None:
            self._check_scope()
        super()._fetch_all()

    def iterator(self, *args, **kwargs):
        self._check_scope()
        return super().iterator(*args, **kwargs)

    def count(self):
        if self._result_cache is None:
            self._check_scope()
        return super().count()

    def exists(self):
        if self._result_cache is None:
            self._check_scope()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._check_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._check_scope()
        return super().update(**kwargs)

    update.alters_data = True

    def delete(self):
        self._check_scope()
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True  # as in Django: no Model.objects.delete()

    def bulk_update(self, objs, fields, batch_size=None):
        # The rows were handed over already loaded, as with instance.save().
        crossing = self.across_tenants("bulk_update of rows already in hand")
        return super(ScopedQuerySet, crossing).bulk_update(objs, fields, batch_size=batch_size)

    bulk_update.alters_data = True


class OrgQuerySet(ScopedQuerySet):
    def for_org(self, org) -> Self:
        return self.filter(organization=org)
