"""The main pages work under the Content-Security-Policy, which refuses inline scripts, inline styles and eval.

Headless Debian Chromium against the live server: every page a consultant and a stakeholder use most is loaded and
its behaviour exercised (a dialog opens and closes, a refused form is swapped in, the sign-off form counts answers),
and the browser reports no CSP violation (`securitypolicyviolation` events and "Refused to ..." console errors), no
JavaScript error, and no <style> element (htmx would inject one for its indicator if its config were ignored).
"""

import re
from datetime import date

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from engagements import definitions, progression
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks
from reporting import periods
from reporting.models import HealthCheckRun, HealthResult, RunStatus
from tests.e2e.test_screen_truth import open_page, sign_in

# Runs before any page script, on every navigation: keep what the browser reports about the policy.
WATCH = """window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));"""


class Watch:
    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        # Chromium logs each refusal ("Refused to execute inline script ... Content Security Policy ..."); other
        # console errors, such as the 400 a refused form answers on purpose, are not the policy's.
        page.on("console", lambda m: "Content Security Policy" in m.text and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"script error: {e}"))

    def check(self, name: str, *, ours: bool = True) -> None:
        problems = self.page.evaluate("window.__csp") + self.errors
        assert not problems, f"{name}: " + "; ".join(problems)
        if ours:  # our pages (not the API docs, which are Swagger UI's): htmx's config holds, no <style> got in
            state = self.page.evaluate(
                "[htmx.config.allowEval, htmx.config.includeIndicatorStyles, document.querySelectorAll('style').length]"
            )
            assert state == [False, False, 0], f"{name}: htmx allowEval, indicator styles, <style> elements: {state}"


def start(cast, name):
    return progression.create_engagement(
        client=cast.client,
        playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
        name=name,
        start_date=date(2026, 11, 2),
        actor=cast.consultant,
        team=[(cast.consultant, "architect")],
        stakeholders=[(cast.stakeholder, "Marketing approver")],
    )


def test_the_main_pages_raise_no_csp_violation(transactional_db, live_server, cast, browser):
    load_library_playbooks()
    published = start(cast, "Lifecycle rebuild")
    version = definitions.publish(engagement=published, signers=[cast.stakeholder], actor=cast.consultant)
    draft = start(cast, "Pipeline hygiene")
    run = HealthCheckRun.objects.create(
        organization=cast.org,
        engagement=published,
        period=periods.due_period(timezone.localdate()),
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
    )
    HealthResult.objects.create(
        organization=cast.org, run=run, task_key="review-lost", task_name="Review lost deals", kind="task",
        metric="", status="not_evaluable",
    )  # fmt: skip
    org = cast.org.slug

    context, page = open_page(browser, 1366)
    context.add_init_script(WATCH)
    watch = Watch(page)
    try:
        sign_in(page, live_server, cast.consultant, reverse("accounts:org-home", args=[org]))
        expect(page.get_by_role("heading", name="My engagements")).to_be_visible()
        policy = page.evaluate("fetch(location.href).then(r => r.headers.get('content-security-policy'))")
        assert policy == settings.CONTENT_SECURITY_POLICY and "unsafe" not in policy
        watch.check("home")

        for name, url in [
            ("engagement", reverse("engagements:engagement-detail", args=[org, published.uuid])),
            ("board", reverse("engagements:board", args=[org, published.uuid])),
        ]:
            page.goto(live_server.url + url)
            expect(page.get_by_role("heading", name="Lifecycle rebuild").first).to_be_visible()
            watch.check(name)

        # The publish dialog opens as a modal from the slot (static/js/dialogs.js) and leaves the page on Cancel.
        page.goto(live_server.url + reverse("engagements:definitions", args=[org, draft.uuid]))
        page.get_by_role("link", name="Publish v1…").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("heading", name="Publish v1 for sign-off")).to_be_visible()
        dialog.get_by_role("button", name="Cancel").click()
        expect(page.locator("#dialog-slot dialog")).to_have_count(0)
        watch.check("definitions")

        # A review recorded without a note is refused (400) and the form comes back with the error next to the field.
        page.goto(live_server.url + reverse("reporting:run-detail", args=[org, published.uuid, run.uuid]))
        item = page.locator(".hc-result", has_text="Review lost deals")
        item.get_by_role("button", name="Record the review").click()
        expect(item.locator(".errorlist")).to_be_visible()
        watch.check("health run")

        # The API docs (Swagger UI from static files, its init script from a URL of its own).
        page.goto(live_server.url + reverse("api:docs"))
        # Swagger UI renders the whole schema in the browser: slow on a busy CI machine.
        expect(page.get_by_role("heading", name=re.compile("GTM Ops API"))).to_be_visible(timeout=60_000)
        watch.check("API docs", ours=False)
    finally:
        context.close()

    portal, page = open_page(browser, 1366)
    portal.add_init_script(WATCH)
    watch = Watch(page)
    try:
        page.goto(live_server.url + link_path(issue_portal_link(stakeholder=cast.stakeholder)))
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
        watch.check("portal home")

        # The sign-off form counts answers and asks for a comment on a "no" (static/js/signoff.js).
        page.goto(live_server.url + reverse("portal:signoff", args=[version.uuid]))
        items = len(version.items)
        expect(page.locator("#signoff-progress")).to_contain_text(f"0 of {items} answered")
        first = page.locator("fieldset.signoff-item").first
        first.get_by_label("No", exact=True).check()
        expect(page.locator("#signoff-progress")).to_contain_text(f"1 of {items} answered")
        expect(page.locator("#signoff-progress")).to_contain_text("1 change requested")
        expect(first.locator("textarea")).to_be_focused()
        watch.check("portal sign-off")
    finally:
        portal.close()
