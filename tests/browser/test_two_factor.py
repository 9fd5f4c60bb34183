"""Two-factor sign-in in a real Chromium: enrol from the account page, then sign in with a
TOTP code, with a recovery code, and get throttled after wrong codes."""

from __future__ import annotations

import time

import pyotp
import pytest

from layouts import ids
from tests.conftest import password_for


def _sign_out(dash_duo, base: str) -> None:
    """Sign out with the navbar's button (from the dashboard, where the navbar is)."""
    if not dash_duo.find_elements(f"#{ids.NAV_LOGOUT}"):
        dash_duo.driver.get(f"{base}/")
    dash_duo.wait_for_contains_text(f"#{ids.NAV_USER}", "trader", timeout=20)
    dash_duo.find_element(f"#{ids.NAV_LOGOUT}").click()
    dash_duo.wait_for_element("#login-submit", timeout=20)


def _password(dash_duo, base: str, role: str) -> None:
    dash_duo.driver.get(f"{base}/login")
    dash_duo.wait_for_element("#username", timeout=20).send_keys(role)
    dash_duo.find_element("#password").send_keys(password_for(role))
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#code", timeout=20)


def _code(dash_duo, code: str) -> None:
    field = dash_duo.wait_for_element("#code", timeout=20)
    field.clear()
    field.send_keys(code)
    dash_duo.find_element("#code-submit").click()


def _enrol(dash_duo, base: str) -> tuple[str, list[str]]:
    dash_duo.driver.get(f"{base}/account")
    dash_duo.wait_for_element("#enable-2fa", timeout=20).click()
    dash_duo.wait_for_element("#totp-qr svg", timeout=20)
    key = dash_duo.find_element("#totp-key").text.replace(" ", "")
    dash_duo.find_element("#current").send_keys(password_for("trader"))
    _code(dash_duo, pyotp.TOTP(key).now())
    codes = dash_duo.wait_for_element("#recovery-codes", timeout=20).text.split()
    dash_duo.find_element("#recovery-continue").click()
    dash_duo.wait_for_contains_text("#account-2fa", "10 unused recovery codes", timeout=20)
    return key, codes


def _only_refused_answers(logs: list[dict]) -> bool:
    """Chromium logs each 401/429 answer to the code form; nothing else may appear."""
    return all(" 401 " in entry["message"] or " 429 " in entry["message"] for entry in logs)


@pytest.mark.slow
def test_tfa001_enrol_then_sign_in_with_totp_recovery_code_and_be_throttled(dash_duo, start_as):
    start_as("trader")
    base = dash_duo.server.url
    key, codes = _enrol(dash_duo, base)
    assert len(codes) == 10
    _sign_out(dash_duo, base)

    _password(dash_duo, base, "trader")
    _code(dash_duo, pyotp.TOTP(key).at(time.time() + 30))  # a step newer than enrolment's
    dash_duo.wait_for_contains_text(f"#{ids.NAV_USER}", "trader", timeout=20)
    _sign_out(dash_duo, base)

    _password(dash_duo, base, "trader")
    _code(dash_duo, codes[0])
    dash_duo.wait_for_element(f"#{ids.NAV_USER}", timeout=20)
    _sign_out(dash_duo, base)

    _password(dash_duo, base, "trader")
    for wrong in range(5):
        _code(dash_duo, f"{wrong:06d}")
        dash_duo.wait_for_contains_text("#code-error", "Wrong code", timeout=20)
    _code(dash_duo, codes[1])
    dash_duo.wait_for_contains_text("#code-error", "Too many wrong codes", timeout=20)
    assert dash_duo.find_elements(f"#{ids.NAV_USER}") == []
    logs = dash_duo.get_logs()
    assert _only_refused_answers(logs), [entry["message"] for entry in logs]
