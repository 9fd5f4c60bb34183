"""First run: no default password; the first admin's password is typed or generated, shown once."""

from __future__ import annotations

import logging
import re

from app.auth import users
from app.auth.passwords import verify_password
from app.first_run import ensure_admin
from tests.conftest import add_user, make_settings


def test_a_fresh_install_gets_a_generated_admin_password_shown_once(app, tmp_path, capsys,
                                                                   caplog):
    engine = app.extensions["p2pdash"].engine
    with caplog.at_level(logging.DEBUG):
        ensure_admin(engine, make_settings(tmp_path))
    shown = re.search(r"created the admin 'admin' and password (\S+)\.", capsys.readouterr().err)
    assert shown, "the generated password is printed on the terminal"
    user, password_hash = users.password_hash_of(engine, "admin")
    assert user.role == "admin" and verify_password(password_hash, shown[1])
    assert shown[1] not in caplog.text, "never in the log"
    ensure_admin(engine, make_settings(tmp_path))
    assert "created the admin" not in capsys.readouterr().err, "only once"


def test_nothing_is_generated_in_production_or_when_an_admin_exists(app, tmp_path, capsys):
    engine = app.extensions["p2pdash"].engine
    ensure_admin(engine, make_settings(tmp_path, P2PDASH_ENV="production"))
    assert users.count(engine, role="admin") == 0
    add_user(app, "admin", "boss")
    ensure_admin(engine, make_settings(tmp_path))
    assert users.find(engine, "admin") is None and capsys.readouterr().err == ""
