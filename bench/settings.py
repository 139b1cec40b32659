"""Settings for bench/portfolio_board.py: the application's own settings, unchanged, except that static files
are collected into a temporary directory (BENCH_STATIC_ROOT) instead of the repository's staticfiles/, and that
BENCH_COLD=1 (the second server, which measures the pages on a cache miss) stores no page fragment.

With DEBUG=false the app serves static files through WhiteNoise's manifest storage, which needs a
collectstatic first; the benchmark does that in its own temporary directory and leaves the checkout alone.
"""

import os

from gtm_ops.settings import *  # noqa: F403

STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]

# The manifest (hashed names, as {% static %} renders them in production) without WhiteNoise's gzip/brotli
# pre-compression of every file, which takes over a minute here and changes nothing on the pages measured.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}  # noqa: F405

if os.environ.get("BENCH_COLD") == "1":
    # engagements/views/fragments.py: every visit builds the page, as on a miss. Keys of their own, so that this
    # server never reads a fragment the other one stored (sessions get cached under them on the first visit).
    FRAGMENT_CACHE_TIMEOUT = 0
    CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": "bench-cold"}}  # noqa: F405
