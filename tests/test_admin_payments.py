"""Admin payment methods: unmapped identifiers listed; mapping one applies to stored offers."""

from __future__ import annotations

from sqlalchemy import insert, text

from callbacks.admin_payments import SEPARATOR
from db.schema import payment_methods
from layouts import ids
from tests.test_admin import admin  # noqa: F401  (fixture)


def test_an_unknown_identifier_is_listed_then_mapped(app, admin):  # noqa: F811
    engine = app.extensions["p2pdash"].engine
    with engine.begin() as connection:
        connection.execute(insert(payment_methods).values(
            exchange="bybit", identifier="999", name="Banco Nuevo", fiat="ARS"))
    listing = admin.call(ids.ADMIN_PAYMENTS_TABLE, {f"{ids.ADMIN_TABS}.active_tab": "payments"})
    assert "Banco Nuevo" in listing and f"bybit{SEPARATOR}999" in listing

    answer = admin.click(ids.ADMIN_PAYMENT_FEEDBACK, ids.ADMIN_PAYMENT_MAP, {
        f"{ids.ADMIN_PAYMENT_METHOD}.value": f"bybit{SEPARATOR}999",
        f"{ids.ADMIN_PAYMENT_CANONICAL}.value": "Bank_Transfer"})
    assert "now counts as bank_transfer" in answer
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT canonical FROM payment_methods "
                                      "WHERE exchange = 'bybit' AND identifier = '999'")) \
            == "bank_transfer"
        assert connection.scalar(text("SELECT count(*) FROM audit_log "
                                      "WHERE action = 'payment_method.map'")) == 1
    listing = admin.call(ids.ADMIN_PAYMENTS_TABLE, {f"{ids.ADMIN_TABS}.active_tab": "payments"})
    assert "Banco Nuevo" not in listing


def test_a_bad_code_is_refused(admin):  # noqa: F811
    answer = admin.click(ids.ADMIN_PAYMENT_FEEDBACK, ids.ADMIN_PAYMENT_MAP, {
        f"{ids.ADMIN_PAYMENT_METHOD}.value": f"bybit{SEPARATOR}999",
        f"{ids.ADMIN_PAYMENT_CANONICAL}.value": "bank transfer!"})
    assert "is not a code like bank_transfer" in answer
