from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.emails import absolute
from accounts.models import Membership, Organization, Role
from accounts.services import get_or_create_user
from engagements import client_tasks, definitions, progression
from engagements.models import ClientAccount, Department, Engagement, StageDefinition, Stakeholder
from engagements.portal_access import issue_portal_link, link_path
from playbooks.models import Playbook
from playbooks.services import load_library_playbooks

DEMO_PASSWORD = "gtm-demo-2026"
# Where Globex's signed stages live in the HubSpot sandbox `make run` starts (crm_sandbox, demo profile),
# mapped as a HubSpot org keeps them: each domain on its own field or pipeline, so no conversion is ever read across
# two domains. Lead stages on the contact lifecycle: a Known Lead is any contact HubSpot knows (its Subscriber or its
# Lead: most contacts arrive as a Lead, a few subscribe first); SQL is "sales-qualified or further along", the lifecycle
# values HubSpot sets after it (Opportunity when a deal opens, Customer and Evangelist when it is won), so no standard
# lifecycle value reads as unsigned. Sales stages on the New Business deal pipeline, customer stages on the Customer
# Onboarding ticket pipeline. Anonymous visitors are not CRM records, HubSpot has no "Marketing Engaged" lifecycle
# value, and Globex has no SAL value: those signed stages name no CRM value.
GLOBEX_STAGES = {
    ("lead", "Known Lead"): ("Contact", "lifecyclestage", ["subscriber", "lead"]),
    ("lead", "MQL"): ("Contact", "lifecyclestage", ["marketingqualifiedlead"]),
    ("lead", "SQL"): ("Contact", "lifecyclestage", ["salesqualifiedlead", "opportunity", "customer", "evangelist"]),
    ("sales", "SAO"): ("Deal", "New Business", ["Discovery Completed"]),
    ("sales", "Evaluation/Use Case"): ("Deal", "New Business", ["Solution Validated"]),
    ("sales", "Proposal/Negotiation"): ("Deal", "New Business", ["Proposal Sent", "Contract Negotiated"]),
    ("sales", "Closed Won"): ("Deal", "New Business", ["Closed Won"]),
    ("customer", "Pre-Onboarding"): ("Ticket", "Customer Onboarding", ["Pre-Onboarding"]),
    ("customer", "Onboarding"): ("Ticket", "Customer Onboarding", ["Onboarding"]),
    ("customer", "Implementation"): ("Ticket", "Customer Onboarding", ["Implementation"]),
    ("customer", "Early Adoption"): ("Ticket", "Customer Onboarding", ["Early Adoption"]),
    ("customer", "Mature Adoption"): ("Ticket", "Customer Onboarding", ["Mature Adoption"]),
}
ORG = {"slug": "northwind", "name": "Northwind Advisory"}
PEOPLE = [
    ("owner@northwind.example", "Olivia", "Owner", Role.OWNER),
    ("consultant@northwind.example", "Carlos", "Consultant", Role.CONSULTANT),
    ("viewer@northwind.example", "Vera", "Viewer", Role.VIEWER),
]
CLIENTS = {
    "Acme Robotics": (
        "acme.example",
        [
            ("Maya Patel", "maya@acme.example", "VP Marketing", Department.MARKETING),
            ("Tom Becker", "tom@acme.example", "VP Sales", Department.SALES),
            ("Rita Gomez", "rita@acme.example", "RevOps Lead", Department.REVOPS),
        ],
    ),
    "Globex Software": (
        "globex.example",
        [
            ("Sam Okafor", "sam@globex.example", "Head of Partnerships", Department.PARTNERSHIPS),
            ("Lena Fischer", "lena@globex.example", "Chief Revenue Officer", Department.EXECUTIVE),
        ],
    ),
}


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization, its people and clients, and print how to sign in."

    @transaction.atomic
    def handle(self, *args, **options):
        org, _ = Organization.objects.get_or_create(slug=ORG["slug"], defaults={"name": ORG["name"]})
        for email, first, last, role in PEOPLE:
            user, _ = get_or_create_user(email=email, password=DEMO_PASSWORD, first_name=first, last_name=last)
            Membership.objects.get_or_create(organization=org, user=user, defaults={"role": role})
        for name, (website, people) in CLIENTS.items():
            client, _ = ClientAccount.objects.get_or_create(organization=org, name=name, defaults={"website": website})
            for person, email, title, department in people:
                Stakeholder.objects.get_or_create(
                    organization=org,
                    client=client,
                    email=email,
                    defaults={"name": person, "title": title, "department": department},
                )
        stakeholder = Stakeholder.objects.for_org(org).get(email="maya@acme.example")
        link = issue_portal_link(stakeholder=stakeholder)
        engagement = self.demo_engagement(org)
        governance = self.governance_engagement(org)

        self.stdout.write(self.style.SUCCESS(f"\nDemo ready at {settings.SITE_URL}/"))
        self.stdout.write(f"  Organization: {org.name} ({absolute(reverse('accounts:org-home', args=[org.slug]))})")
        for email, _, _, role in PEOPLE:
            self.stdout.write(f"  {role.label:<11} {email} / {DEMO_PASSWORD}")
        self.stdout.write(f"  Client portal as {stakeholder.name} (works once, for 30 minutes):")
        self.stdout.write(f"    {absolute(link_path(link))}")
        self.stdout.write(f"  Later links: {absolute(reverse('portal:login'))} with {stakeholder.email}")
        self.stdout.write(
            f"  Demo engagement: {engagement.name} "
            f"({absolute(reverse('engagements:engagement-detail', args=[org.slug, engagement.uuid]))})"
        )
        go_live = (timezone.localdate().replace(day=1) - timedelta(days=100)).replace(day=1)
        self.stdout.write(
            f"  Health checks: {governance.name}, its stages signed and mapped to Globex's HubSpot sandbox; start "
            f"its maintenance schedule at {absolute(reverse('reporting:health', args=[org.slug, governance.uuid]))}\n"
            f"    (go-live {go_live:%d %B %Y}, also checking the months since go-live: a report per month)\n"
        )

    def demo_engagement(self, org) -> Engagement:
        """Load the playbook library and start one GTM Lifecycle engagement for Acme, once."""
        load_library_playbooks()
        acme = ClientAccount.objects.for_org(org).get(name="Acme Robotics")
        existing = Engagement.objects.for_org(org).filter(client=acme).first()
        if existing is not None:
            return existing
        consultant = Membership.objects.for_org(org).get(role=Role.CONSULTANT).user
        owner = Membership.objects.for_org(org).filter(role=Role.OWNER).first().user
        people = {s.email: s for s in Stakeholder.objects.for_org(org).filter(client=acme)}
        engagement = progression.create_engagement(
            client=acme,
            playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
            name="Lifecycle stage rebuild",
            start_date=timezone.localdate() - timedelta(days=10),
            target_date=timezone.localdate() + timedelta(days=80),
            engagement_type="dedicated",
            methodology_option="foundation-single-depth",
            team=[(consultant, "architect"), (owner, "engineer")],
            stakeholders=[
                (people["maya@acme.example"], "Approver (Marketing)"),
                (people["tom@acme.example"], "Approver (Sales)"),
                (people["rita@acme.example"], "Champion"),
            ],
            actor=consultant,
        )
        # Pre-kickoff is under way: the architect's prep has started.
        for item in engagement.sub_phases.get(key="1a").checklist.filter(owner="architect").order_by("order")[:3]:
            progression.set_checklist_item(item=item, done=True, actor=consultant)
        # Acme's homework has due dates; the intro video is overdue, so Maya's portal and the home page show one.
        homework = engagement.sub_phases.get(key="1a").checklist.client_owned().order_by("order")
        for item, days in zip(homework, (-3, 4, 9), strict=False):
            client_tasks.set_due_date(item=item, due_date=timezone.localdate() + timedelta(days=days), actor=consultant)
        return engagement

    def governance_engagement(self, org) -> Engagement:
        """Globex's lifecycle rebuild, months ago: its stage architecture is signed and mapped to the values of the
        HubSpot sandbox `make run` connects Globex to, so its maintenance schedule measures a real CRM. Once."""
        globex = ClientAccount.objects.for_org(org).get(name="Globex Software")
        existing = Engagement.objects.for_org(org).filter(client=globex).first()
        if existing is not None:
            return existing
        consultant = Membership.objects.for_org(org).get(role=Role.CONSULTANT).user
        lena = Stakeholder.objects.for_org(org).get(email="lena@globex.example")
        sam = Stakeholder.objects.for_org(org).get(email="sam@globex.example")
        today = timezone.localdate()
        engagement = progression.create_engagement(
            client=globex,
            playbook_version=Playbook.objects.library().get(key="gtm-lifecycle").latest_version(),
            name="Lifecycle governance",
            start_date=today - timedelta(days=240),
            target_date=today - timedelta(days=120),
            engagement_type="dedicated",
            team=[(consultant, "architect")],
            stakeholders=[(lena, "Approver (Revenue)"), (sam, "Champion")],
            actor=consultant,
        )
        for stage in StageDefinition.objects.for_org(org).filter(engagement=engagement):
            place = GLOBEX_STAGES.get((stage.domain, stage.name))
            if place:
                stage.crm_object, stage.crm_field, stage.crm_values = place
                stage.save(update_fields=["crm_object", "crm_field", "crm_values"])
        # Signed long ago: nobody needs the sign-off emails now.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            version = definitions.publish(engagement=engagement, signers=[lena], actor=consultant)
            definitions.sign(
                version=version, stakeholder=lena, decisions={key: "yes" for key, _ in version.items}, comments={}
            )
        return engagement
