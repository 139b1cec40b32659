# One image for web (gunicorn), the Celery workers, Celery beat and the one-shot migrate service.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# WeasyPrint needs pango and harfbuzz; poppler-utils gives pdftotext for checking reports.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
      fonts-dejavu-core poppler-utils \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The production lock: the dev group (pytest, playwright, ruff, aiosmtpd) stays out of the image.
COPY requirements-prod.lock ./
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip install --system --no-cache -r requirements-prod.lock \
 && pip uninstall -y uv

COPY . .
# Placeholder secrets exist for collectstatic only; the settings refuse to start the real services without them.
RUN DEBUG=false SECRET_KEY=collectstatic-only ALLOWED_HOSTS=build \
      CRM_SECRET_KEY=YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE= \
      python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 --home-dir /app gtm \
 && mkdir -p /data/media /data/beat /app/var \
 && chown -R gtm /data /app/var
USER gtm

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz/', timeout=4)"
CMD ["gunicorn", "gtm_ops.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
