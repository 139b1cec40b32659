"""No docker engine runs here, so docker-compose.yml and the Dockerfile are checked by reading them."""

import re
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "gtm_ops" / "settings.py").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_shape():
    services = compose()["services"]
    assert set(services) == {"web", "worker", "worker-crm", "beat", "db", "redis", "mail"}
    assert "gunicorn gtm_ops.wsgi:application" in services["web"]["command"]
    assert services["beat"]["command"].startswith("celery -A gtm_ops beat")
    for name in ("web", "worker", "worker-crm", "beat"):
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"


def test_every_celery_queue_has_a_worker_in_compose():
    from django.conf import settings

    consumed = set()
    for name in ("worker", "worker-crm"):
        command = compose()["services"][name]["command"]
        assert command.startswith("celery -A gtm_ops worker")
        consumed |= set(re.search(r"-Q (\S+)", command).group(1).split(","))
    assert consumed == {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert "--pool=threads" in compose()["services"]["worker-crm"]["command"]


def test_compose_sets_only_variables_the_settings_read():
    env = compose()["services"]["web"]["environment"]
    for variable in env:
        assert f'"{variable}"' in SETTINGS, f"{variable} is set in docker-compose.yml but settings.py never reads it"
    assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")


def test_compose_and_dockerfile_name_real_commands():
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "Dockerfile").read_text()
    commands = set(get_commands())
    for command in re.findall(r"manage\.py (\w+)", text):
        assert command in commands, f"manage.py {command} does not exist"
    assert "requirements.lock" in (ROOT / "Dockerfile").read_text()
