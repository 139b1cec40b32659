"""No docker engine runs here, so docker-compose.yml and the Dockerfile are checked by reading them."""

import re
import subprocess
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = (ROOT / "gtm_ops" / "settings.py").read_text()


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_shape():
    services = compose()["services"]
    assert set(services) == {"migrate", "web", "worker", "worker-crm", "beat", "db", "redis", "mail"}
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
    assert "requirements-prod.lock" in (ROOT / "Dockerfile").read_text()


APP_SERVICES = ("web", "worker", "worker-crm", "beat")


def test_everything_that_reads_the_schema_waits_for_the_one_shot_migrate():
    services = compose()["services"]
    assert "manage.py migrate" in services["migrate"]["command"]
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert "migrate" not in services[name]["command"], f"{name} migrates on its own"


def test_every_long_running_service_has_a_healthcheck_a_restart_policy_and_a_pinned_image():
    services = compose()["services"]
    for name, service in services.items():
        if name == "migrate":
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
        image = service["image"]
        if name not in APP_SERVICES:
            assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} is not pinned to a release"


def test_beat_keeps_its_schedule_in_a_volume_and_secrets_are_required():
    data = compose()
    beat = data["services"]["beat"]
    schedule = re.search(r"--schedule (\S+)", beat["command"]).group(1)
    assert any(schedule.startswith(v.split(":")[1] + "/") for v in beat["volumes"]), schedule
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("SECRET_KEY", "CRM_SECRET_KEY"):
        assert re.search(rf"{secret}: \${{{secret}:\?", text), f"compose starts without {secret}"
    assert data["x-app"]["environment"]["SECURE_COOKIES"] == "${SECURE_COOKIES:-true}"


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore lines as (excluded?, regex), with Docker's meaning: a match excludes the path and, for a
    directory, everything under it; `**` spans directories; a later `!pattern` re-includes."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*|\?)", glob):
            regex += {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        patterns.append((not negated, re.compile(rf"^{regex}(?:/.*)?$")))
    return patterns


def image_files(paths: list[str]) -> set[str]:
    kept = set()
    rules = dockerignore_patterns()
    for path in paths:
        excluded = False
        for excludes, pattern in rules:
            if pattern.match(path):
                excluded = excludes
        if not excluded:
            kept.add(path)
    return kept


def test_the_image_context_leaves_out_the_venv_databases_git_and_tests():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    local = [".venv/bin/python", ".git/HEAD", "var/gtm.sqlite3", "db.sqlite3", "gtm_ops/__pycache__/settings.pyc",
             "test-artifacts/home.png", "staticfiles/css/app.css", ".env"]
    kept = image_files(tracked + local)
    assert not {p for p in kept if p.split("/")[0] in (".venv", ".git", "var", "tests", "bench", "test-artifacts")}
    assert not {p for p in kept if p.endswith((".sqlite3", ".pyc")) or p == ".env"}
    for needed in ("manage.py", "gtm_ops/settings.py", "requirements-prod.lock", "templates/base.html"):
        assert needed in kept, f"{needed} is left out of the image"
    assert {p for p in kept if p.startswith("playbooks/library/")}, "the playbook library is left out of the image"


def test_the_production_image_installs_no_dev_packages_and_fails_loudly():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "|| true" not in dockerfile, "a failing build step must fail the build"
    installed = re.search(r"uv pip install .* -r (\S+)", dockerfile).group(1)
    pins = dict(re.findall(r"^([\w.\-\[\]]+)==(\S+)", (ROOT / installed).read_text(), re.M))
    dev = dict(re.findall(r"^([\w.\-\[\]]+)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M))
    assert not {"pytest", "pytest-django", "playwright", "ruff", "aiosmtpd"} & set(pins)
    assert {name: dev.get(name) for name in pins} == pins, "production pins differ from the tested lock"
    assert re.search(r"^FROM python:3\.11\.\d+-", dockerfile, re.M), "the base image is not pinned to a release"
    assert "USER gtm" in dockerfile and re.search(r"useradd .*gtm", dockerfile)
