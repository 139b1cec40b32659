"""A prefork render worker's parent loads what renders need before it forks (deliverables/pdf.py)."""

import gc
import json
import os
import subprocess
import sys

from django.conf import settings


def test_the_parent_loads_weasyprint_and_the_report_templates_then_freezes_them():
    # A fresh interpreter: this test process may have imported WeasyPrint already.
    code = """
import gc, sys
import django
django.setup()
from celery.signals import worker_before_create_process
from django.template import engines
from deliverables import registry
assert "weasyprint" not in sys.modules
worker_before_create_process.send(sender=None)
def cached(loader):  # the cached loader, wherever it sits (template_partials wraps it)
    if hasattr(loader, "get_template_cache"):
        return set(loader.get_template_cache)
    return set().union(*(cached(inner) for inner in getattr(loader, "loaders", [])))
compiled = set().union(*(cached(loader) for loader in engines["django"].engine.template_loaders))
missing = {registry.get(kind).template for kind in registry.kinds()} - compiled
import json
print(json.dumps(["weasyprint" in sys.modules, gc.get_freeze_count() > 0, sorted(missing), len(registry.kinds())]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gtm_ops.settings"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded, frozen, missing, kinds = json.loads(out.stdout.splitlines()[-1])
    assert (loaded, frozen, missing) == (True, True, [])
    assert kinds >= 3  # the definition documents and the health-check report at least
    assert gc.get_freeze_count() == 0  # this process was left alone
