"""Admin tab, payment methods: list unmapped identifiers; map one to a canonical code."""

from __future__ import annotations

from dash import Dash, Input, Output, State

from app import access, audit
from callbacks.admin import acting_admin, engine, feedback, table, when
from db.payment_methods import set_canonical, unknown_payment_methods
from layouts import ids

SEPARATOR = "|"  # joins exchange and identifier in one dropdown value (split once)


def register(dash_app: Dash) -> None:
    """Show unmapped identifiers; map one, which applies at once to stored offers too."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_PAYMENTS_TABLE, "children"),
        Output(ids.ADMIN_PAYMENT_METHOD, "options"),
        Input(ids.ADMIN_TABS, "active_tab"),
        Input(ids.ADMIN_PAYMENT_FEEDBACK, "children"),
        roles=access.ADMINS,
    )
    def update_unknown_methods(_tab, _feedback):
        rows = unknown_payment_methods(engine())
        listing = table(["Exchange", "Identifier", "Name", "Fiat", "First seen"], [
            [row["exchange"], row["identifier"], row["name"] or "-", row["fiat"] or "-",
             when(row["first_seen_at"])] for row in rows])
        options = [{"label": f"{row['exchange']}: {row['identifier']}",
                    "value": f"{row['exchange']}{SEPARATOR}{row['identifier']}"} for row in rows]
        return listing, options

    @access.callback(
        dash_app,
        Output(ids.ADMIN_PAYMENT_FEEDBACK, "children"),
        Input(ids.ADMIN_PAYMENT_MAP, "n_clicks"),
        State(ids.ADMIN_PAYMENT_METHOD, "value"),
        State(ids.ADMIN_PAYMENT_CANONICAL, "value"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_map_payment_method(_clicks, method, canonical):
        actor = acting_admin()
        if not method or SEPARATOR not in method or not canonical:
            return feedback(False, "choose an identifier and type a canonical code")
        exchange, identifier = method.split(SEPARATOR, 1)
        code = canonical.strip().lower()
        try:
            found = set_canonical(engine(), exchange, identifier, code)
        except ValueError as error:
            return feedback(False, str(error))
        if not found:
            return feedback(False, f"{exchange} {identifier!r} is not a known identifier")
        audit.record(engine(), actor, "payment_method.map", f"{exchange}:{identifier}",
                     {"canonical": code})
        return feedback(True, f"{exchange} {identifier} now counts as {code}")
