"""Every event code the source can record has a sentence in plain words (accounts/activity_words.py)."""

import re
from pathlib import Path

from accounts import activity_words
from accounts.models import ActivityEntry

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "engagements", "client_workspace", "crm_connectors", "engineering", "reporting", "playbooks")
CODE = r"[a-z_]+\.[a-z_]+"
# Codes built at run time, and what they expand to (the kinds each call site passes).
BOARD_KINDS = ("workitem", "decisionlogentry", "risk", "release", "feedbackitem")
BUILT = {
    "f\"{kind}.{'created' if creating else 'updated'}\"": [
        f"{k}.{v}" for k in BOARD_KINDS for v in ("created", "updated")
    ],
    'f"{item._meta.model_name}.deleted"': [f"{k}.deleted" for k in BOARD_KINDS],
    "f\"definitions.{kind}_{'added' if creating else 'changed'}\"": [
        f"definitions.{k}_{v}" for k in ("term", "stage") for v in ("added", "changed")
    ],
    'f"definitions.{kind}_removed"': ["definitions.term_removed", "definitions.stage_removed"],
    "f\"definitions.{_kind(item)}_{'added' if creating else 'changed'}\"": [
        f"definitions.{k}_{v}" for k in ("term", "stage") for v in ("added", "changed")
    ],
    'f"definitions.{_kind(item)}_removed"': ["definitions.term_removed", "definitions.stage_removed"],
    'f"definitions.{self.kind}_removed"': ["definitions.term_removed", "definitions.stage_removed"],
    'f"definitions.{self.kind}_added"': ["definitions.term_added", "definitions.stage_added"],
    'f"definitions.{self.kind}_changed"': ["definitions.term_changed", "definitions.stage_changed"],
    'f"checkpoint.{action}"': ["checkpoint.check", "checkpoint.waive", "checkpoint.reopen"],
    'f"crm_apply.{action}_requested"': [f"crm_apply.{a}_requested" for a in ("dry_run", "apply", "undo")],
    'f"crm_records.{action}_requested"': [f"crm_records.{a}_requested" for a in ("count", "move")],
}


def recorded_codes() -> set[str]:
    codes = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            # verb="a.b", verb="a.b" if x else "c.d", and module constants such as ESCALATED = "health.flag_escalated"
            for line in re.findall(r"verb=([^\n]+)", source):
                codes.update(re.findall(rf'(?<![{{\w])"({CODE})"', line))
                assert 'f"' not in line or any(b in line for b in BUILT), f"{path.name}: a new built code: {line}"
            codes.update(re.findall(rf'^[A-Z_]+ = "({CODE})"', source, re.MULTILINE))
            for built, expanded in BUILT.items():  # also where a code is passed on, as in api_definitions' _save
                if built in source:
                    codes.update(expanded)
    return codes


def test_every_recorded_code_has_a_sentence():
    codes = recorded_codes()
    assert {"crm_connection.created", "health.flag_escalated", "risk.deleted", "checkpoint.waive"} <= codes
    missing = sorted(codes - activity_words.SENTENCES.keys())
    assert not missing, f"event codes with no sentence in accounts/activity_words.py: {missing}"


def test_a_sentence_names_who_and_what():
    entry = ActivityEntry(actor_label="carl@alpha.example", verb="crm_connection.created", target_label="Acme {x}")
    assert activity_words.sentence(entry) == "carl@alpha.example connected a CRM (Acme {x})"
    ticked = ActivityEntry(
        actor_label="carl", verb="checklist.checked", target_label="Rebuild", data={"text": "Kick-off held"}
    )
    assert activity_words.sentence(ticked) == "carl ticked “Kick-off held” on Rebuild"
    unknown = ActivityEntry(actor_label="system", verb="thing.got_done", target_label="Acme")
    assert activity_words.sentence(unknown) == "system · thing got done Acme"
