from django.core.management.base import BaseCommand, CommandError

from engagements.definitions import verify_all
from engagements.models import DefinitionVersion, Signature

EVERY = "the command checks every tenant's signed record"


class Command(BaseCommand):
    help = "Recompute every definition version's SHA-256 and compare it with the sealed hash and each signature."

    def handle(self, *args, **options):
        problems = verify_all()
        for problem in problems:
            self.stderr.write(self.style.ERROR(problem))
        if problems:
            raise CommandError(f"{len(problems)} mismatch(es): the signed record has been altered.")
        self.stdout.write(
            self.style.SUCCESS(
                f"All {DefinitionVersion.objects.across_tenants(EVERY).count()} versions and "
                f"{Signature.objects.across_tenants(EVERY).count()} signatures verify."
            )
        )
