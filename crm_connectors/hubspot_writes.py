"""Configuration writes for the HubSpot connector (the engineering phase's apply and undo), through hubspot-api-client.

Properties API: create an enumeration property with its options, replace a property's options (add, relabel,
hide = deactivate, remove what an apply added), archive a property an apply created. Pipelines API: create a stage
(deal stages carry metadata.probability as HubSpot sends it, "0.25"), update its label, probability or archived
flag, archive a stage an apply created. Every request goes through the connector's Guard like its reads: counted,
budgeted, rate-limited and retried.

Write access is read from HubSpot, never assumed: token introspection (GET /oauth/v1/access-tokens/{token}) lists
the token's scopes, and changing configuration needs `crm.schemas.{contacts,companies,deals}.write` (properties)
and `crm.objects.deals.write` (deal pipeline stages), as HubSpot's scope reference names them. Ticket pipeline
stages need `tickets`, which every reading token already holds.

States are the interface's (crm_connectors.base): a value or stage {"label", "active", "probability" 0-100 | None},
a field {"type", "values": [label, ...]}, None when absent. HubSpot lists no archived stage, so an archived stage
reads as absent; a plan only archives (deactivates) stages, and undo restores one by its id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hubspot.crm.pipelines import PipelineStageInput, PipelineStagePatchInput
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyUpdate
from hubspot.oauth.exceptions import ApiException as OAuthApiException

from .base import CrmError, CrmQueryError, CrmUnsupported, WriteAccess

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

WRITE_SCOPES = (
    "crm.schemas.contacts.write",
    "crm.schemas.companies.write",
    "crm.schemas.deals.write",
    "crm.objects.deals.write",
)
GROUPS = {
    "contact": "contactinformation",
    "company": "companyinformation",
    "deal": "dealinformation",
    "ticket": "ticketinformation",
}


def _norm(text: Any) -> str:
    return " ".join(str(text or "").lower().split())


def _probability(value: Any) -> int | None:
    try:
        return None if value in (None, "") else round(float(value) * 100)
    except (TypeError, ValueError):
        return None


def _decimal(percent: int) -> str:
    """HubSpot's own spelling of a stage probability: "0.25", "1.0"."""
    text = f"{percent / 100:g}"
    return text if "." in text else text + ".0"


class HubSpotWrites:
    """Mixed into HubSpotConnector: the configuration-write half of the CrmConnector interface."""

    if TYPE_CHECKING:
        label: str
        _token: str
        _client: Any
        _apis: dict[str, Any]
        _properties: dict[str, list[Any]]
        _fields: dict[str, Any]
        _pipelines: dict[str, Any]

        def _api(self, name: str) -> Any: ...
        def _translate(self) -> AbstractContextManager[None]: ...
        def _api_error(self, exc: Any) -> CrmError: ...
        def _object_type(self, kind: str) -> str: ...

    def _write_api(self, name: str) -> Any:
        key = f"write:{name}"
        if key not in self._apis:
            self._api("properties")  # builds the client, whose api_factory routes every call through the Guard
            crm, oauth = self._client.crm, self._client.oauth
            self._apis[key] = {
                "stages": lambda: crm.pipelines.pipeline_stages_api,
                "tokens": lambda: oauth.access_tokens_api,
            }[name]()
        return self._apis[key]

    @contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            with self._translate():
                yield
        except OAuthApiException as exc:
            raise self._api_error(exc) from None

    def _forget(self) -> None:
        """A write made the cached metadata stale: the next read asks HubSpot again."""
        self._properties.clear()
        self._fields.clear()
        self._pipelines.clear()

    # ---- the interface

    def write_access(self) -> WriteAccess:
        try:
            with self._writing():
                info = self._write_api("tokens").get(self._token)
        except CrmError as exc:
            return WriteAccess(False, f"HubSpot would not say what this token may do ({exc}).")
        missing = [s for s in WRITE_SCOPES if s not in set(info.scopes or [])]
        if missing:
            return WriteAccess(
                False,
                "This HubSpot private app may read the CRM but not change its configuration: it lacks the "
                f"scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}. Add them to the private app "
                "(Settings → Integrations → Private Apps → Scopes), then apply again.",
            )
        return WriteAccess(True)

    def config_state(self, op: dict[str, Any]) -> dict[str, Any] | None:
        if op["kind"] == "create_field":
            prop = self._property(op)
            if prop is None:
                return None
            options = sorted(prop.options or [], key=lambda o: o.display_order or 0)
            return {
                "type": "picklist" if prop.type == "enumeration" else prop.type,
                "values": [o.label for o in options if not o.hidden],
            }
        if op["pipeline"]:
            stage = self._stage(op)
            if stage is None:
                return None
            probability = _probability((stage.metadata or {}).get("probability")) if op["object"] == "deal" else None
            return {"label": stage.label, "active": not stage.archived, "probability": probability}
        prop = self._property(op)
        option = _option(prop.options or [], op) if prop is not None else None
        if option is None:
            return None
        return {"label": option.label, "active": not option.hidden, "probability": None}

    def write_config(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        try:
            if op["kind"] == "create_field":
                self._write_field(op, state)
            elif op["pipeline"]:
                self._write_stage(op, state)
            else:
                self._write_option(op, state)
        finally:
            self._forget()

    # ---- properties

    def _property(self, op: dict[str, Any]) -> Any:
        try:
            with self._writing():
                return self._api("properties").get_by_name(self._object_type(op["object"]), op["field"])
        except CrmUnsupported:  # 404: no such property
            return None

    def _write_field(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        object_type = self._object_type(op["object"])
        prop = self._property(op)
        with self._writing():
            if state is None:
                if prop is not None:
                    self._api("properties").archive(object_type, op["field"])
                return
            labels = [str(v) for v in state.get("values") or []]
            if prop is None:
                options = [OptionInput(label=v, value=v, display_order=i, hidden=False) for i, v in enumerate(labels)]
                self._api("properties").create(
                    object_type,
                    PropertyCreate(
                        name=op["field"],
                        label=op["label"],
                        type="enumeration",
                        field_type="select",
                        group_name=GROUPS[op["object"]],
                        options=options,
                    ),
                )
                return
            options = _inputs(prop.options or [])
            have = {_norm(o.label) for o in options} | {_norm(o.value) for o in options}
            options += [
                OptionInput(label=v, value=v, display_order=len(options) + i, hidden=False)
                for i, v in enumerate(v for v in labels if _norm(v) not in have)
            ]
            self._api("properties").update(object_type, op["field"], PropertyUpdate(options=options))

    def _write_option(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        prop = self._property(op)
        if prop is None:
            raise CrmQueryError(
                f"HubSpot {op['object']} have no property {op['field']!r} to change.", platform="hubspot"
            )
        options = _inputs(prop.options or [])
        found = _option(options, op)
        if state is None:
            options = [o for o in options if o is not found]
        elif found is not None:
            found.label, found.hidden = state["label"], not state["active"]
        else:
            options.append(
                OptionInput(
                    label=state["label"], value=op["value"], display_order=len(options), hidden=not state["active"]
                )
            )
        with self._writing():
            self._api("properties").update(
                self._object_type(op["object"]), op["field"], PropertyUpdate(options=options)
            )

    # ---- pipeline stages

    def _stage(self, op: dict[str, Any]) -> Any:
        with self._writing():
            stages = self._write_api("stages").get_all(self._object_type(op["object"]), op["pipeline"]).results
        return _option(stages or [], op, by="id")

    def _metadata(self, op: dict[str, Any], state: dict[str, Any]) -> dict[str, str]:
        if op["object"] != "deal":
            return {"ticketState": "OPEN"} if op["kind"] == "create_pipeline_stage" else {}
        probability = state.get("probability")
        if probability is None:
            return {}
        # the spec weighs open stages 10-90 and closes at 0 (lost) and 100 (won)
        return {"probability": _decimal(probability), "isClosed": str(probability in (0, 100)).lower()}

    def _write_stage(self, op: dict[str, Any], state: dict[str, Any] | None) -> None:
        object_type, api = self._object_type(op["object"]), self._write_api("stages")
        stage = self._stage(op)
        with self._writing():
            if state is None:
                if stage is not None:
                    api.archive(object_type, op["pipeline"], stage.id)
                return
            metadata = self._metadata(op, state)
            if stage is None and op["kind"] == "create_pipeline_stage":
                listed = api.get_all(object_type, op["pipeline"]).results or []
                api.create(
                    object_type,
                    op["pipeline"],
                    PipelineStageInput(label=state["label"], display_order=len(listed), metadata=metadata),
                )
                return
            patch = PipelineStagePatchInput(
                label=state["label"], archived=not state["active"], metadata=metadata or None
            )
            # an archived stage is not listed: it is restored by the id the plan recorded
            api.update(object_type, op["pipeline"], stage.id if stage is not None else op["value"], patch)


def _option(options: list[Any], op: dict[str, Any], by: str = "value") -> Any:
    """The option (or stage) the operation targets: by its internal value (stage id); an added one, whose internal
    value HubSpot may have chosen, also by its label."""
    wanted = _norm(op["value"])
    found = next((o for o in options if _norm(getattr(o, by)) == wanted), None)
    if found is None and op["kind"] in ("add_value", "create_pipeline_stage"):
        found = next((o for o in options if _norm(o.label) == _norm(op["label"])), None)
    return found


def _inputs(options: list[Any]) -> list[OptionInput]:
    ordered = sorted(options, key=lambda o: o.display_order or 0)
    return [
        OptionInput(label=o.label, value=o.value, display_order=i, hidden=bool(o.hidden), description=o.description)
        for i, o in enumerate(ordered)
    ]
