from django.core.management.base import BaseCommand, CommandError

from playbooks.loader import PlaybookFileError
from playbooks.services import load_library_playbooks


class Command(BaseCommand):
    help = "Load playbooks/library/*.yaml; a playbook gets a new version only when its content changed."

    def add_arguments(self, parser):
        parser.add_argument("--directory", help="Load from this folder instead of playbooks/library/.")

    def handle(self, *args, directory=None, **options):
        try:
            results = load_library_playbooks(directory)
        except PlaybookFileError as exc:
            raise CommandError(str(exc)) from exc
        for version, created in results:
            state = "new version" if created else "unchanged"
            self.stdout.write(f"{version.playbook.key:<24} v{version.number} ({state})")
