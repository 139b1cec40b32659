from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from crm_sandbox.connection import sandbox_connection, sandbox_oauth_app
from engagements.models import ClientAccount

DEMO = {"Acme Robotics": "salesforce", "Globex Software": "hubspot"}


class Command(BaseCommand):
    help = "Connect the demo clients to running CRM sandboxes (Acme: Salesforce-shaped, Globex: HubSpot-shaped)."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="northwind")
        parser.add_argument("--salesforce", required=True, help="base URL of `manage.py crm_sandbox --kind salesforce`")
        parser.add_argument("--hubspot", required=True, help="base URL of `manage.py crm_sandbox --kind hubspot`")

    def handle(self, *args, org, salesforce, hubspot, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}: run `manage.py seed_demo` first.")
        urls = {"salesforce": salesforce, "hubspot": hubspot}
        for name, kind in DEMO.items():
            client = ClientAccount.objects.for_org(organization).filter(name=name).first()
            if client is None:
                raise CommandError(f"No demo client {name!r} in {organization}: run `manage.py seed_demo` first.")
            connection = sandbox_connection(client=client, sandbox_url=urls[kind])
            self.stdout.write(f"{name}: {connection.get_kind_display()} sandbox at {connection.base_url}")
        for url in urls.values():  # so a stakeholder can connect a sandbox from the portal through OAuth
            sandbox_oauth_app(organization=organization, sandbox_url=url)
