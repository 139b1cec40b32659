import re

from django.core.management import call_command

from accounts.models import Membership, Organization
from engagements.models import ClientAccount, PortalLink, Stakeholder


def run_seed() -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_working_logins(db, client):
    run_seed()
    output = run_seed()
    assert Organization.objects.count() == 1
    org = Organization.objects.get()
    assert Membership.objects.for_org(org).count() == 3
    assert ClientAccount.objects.for_org(org).count() == 2
    assert Stakeholder.objects.for_org(org).count() == 5
    # The second run superseded the first link: one usable link, the one printed last.
    assert PortalLink.objects.usable().count() == 1

    email, password = re.search(r"Owner\s+(\S+) / (\S+)", output).groups()
    assert client.login(username=email, password=password)
    assert "Northwind Advisory" in client.get(f"/o/{org.slug}/").content.decode()
    client.logout()

    link = re.search(r"http://127\.0\.0\.1:8000(/portal/auth/\S+/)", output).group(1)
    assert client.post(link).status_code == 302
    assert "Welcome, Maya Patel" in client.get("/portal/").content.decode()
