"""No password or API key is stored in clear: dump the whole database and look for them."""

from __future__ import annotations

import subprocess

from sqlalchemy.engine import make_url

from app.auth import commands
from tests.conftest import AuthActions, add_user


def _pg_dump(pg_cluster, database_url: str) -> str:
    url = make_url(database_url)
    command = [str(pg_cluster.bindir / "pg_dump"), "--no-owner", "-h", url.host,
               "-p", str(url.port), "-U", url.username, url.database]
    result = subprocess.run(command, capture_output=True, text=True, check=True,
                            env={"PGPASSWORD": url.password, "PATH": "/usr/bin:/bin"})
    return result.stdout


def test_database_dump_holds_no_password_or_api_key(app, pg_cluster, database_url):
    engine = app.extensions["p2pdash"].engine
    passwords = {"admin": "Admin-Secret-Pass-1", "analyst": "Analyst-Secret-Pass-2"}
    for role, password in passwords.items():
        add_user(app, role, password=password)
    commands.reset_password(engine, "test", "analyst", "Analyst-New-Secret-3")
    passwords["analyst-new"] = "Analyst-New-Secret-3"
    keys = [commands.create_key(engine, "test", "admin", "ingest", ["ingest", "read"])[1],
            commands.create_key(engine, "test", "analyst", "models", ["export"])[1]]
    client = app.test_client()
    assert AuthActions(client).login("admin", passwords["admin"]).status_code == 302
    assert AuthActions(app.test_client()).login("analyst", "a-wrong-guess-4").status_code == 401
    assert client.get("/api/v1/me", headers={"X-API-Key": keys[0]}).status_code == 200

    dump = _pg_dump(pg_cluster, database_url)
    assert "COPY public.users" in dump and "COPY public.api_keys" in dump
    assert "$argon2id$" in dump, "passwords are stored as argon2id hashes"
    for secret in [*passwords.values(), "a-wrong-guess-4", *keys]:
        assert secret not in dump
    for key in keys:
        assert key.split("_", 2)[2] not in dump, "not even the secret part of a key"
        assert key[:13] in dump, "the short prefix is kept, to show in lists"
