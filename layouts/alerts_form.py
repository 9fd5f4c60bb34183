"""The rule form of the Alerts page: every field of a rule with a slot for its error, shown
or hidden by what the chosen metric and condition need, and the preview beside it."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.alerts.conditions import CONDITIONS
from app.alerts.metrics import METRICS
from db.alert_model import DIRECTIONS, ERROR_MODES, NODATA_MODES, SEVERITIES
from layouts import ids
from layouts.controls import buttons, chart, market_keys, spot_symbols

# Rule form keys -> the component holding each (the callbacks read and fill them in order).
FORM_FIELDS: dict[str, tuple[str, str]] = {
    "name": (ids.ALERTS_FORM_NAME, "value"),
    "metric": (ids.ALERTS_FORM_METRIC, "value"),
    "market": (ids.ALERTS_FORM_MARKET, "value"),
    "other": (ids.ALERTS_FORM_OTHER, "value"),
    "symbol": (ids.ALERTS_FORM_SYMBOL, "value"),
    "window_seconds": (ids.ALERTS_FORM_WINDOW, "value"),
    "amount": (ids.ALERTS_FORM_AMOUNT, "value"),
    "payment": (ids.ALERTS_FORM_PAYMENT, "value"),
    "merchant_only": (ids.ALERTS_FORM_MERCHANT, "value"),
    "completion_pct": (ids.ALERTS_FORM_COMPLETION, "value"),
    "condition": (ids.ALERTS_FORM_CONDITION, "value"),
    "threshold": (ids.ALERTS_FORM_THRESHOLD, "value"),
    "low": (ids.ALERTS_FORM_LOW, "value"),
    "high": (ids.ALERTS_FORM_HIGH, "value"),
    "direction": (ids.ALERTS_FORM_DIRECTION, "value"),
    "for_seconds": (ids.ALERTS_FORM_FOR, "value"),
    "keep_firing_for_seconds": (ids.ALERTS_FORM_KEEP, "value"),
    "repeat_seconds": (ids.ALERTS_FORM_REPEAT, "value"),
    "nodata_seconds": (ids.ALERTS_FORM_NODATA, "value"),
    "nodata_state": (ids.ALERTS_FORM_NODATA_STATE, "value"),
    "error_state": (ids.ALERTS_FORM_ERROR_STATE, "value"),
    "severity": (ids.ALERTS_FORM_SEVERITY, "value"),
    "labels": (ids.ALERTS_FORM_LABELS, "value"),
    "note": (ids.ALERTS_FORM_NOTE, "value"),
    "notify": (ids.ALERTS_FORM_NOTIFY, "value"),
    "enabled": (ids.ALERTS_FORM_ENABLED, "value"),
}
# Where each field's error shows ("form": errors of no field of the form).
ERROR_SLOTS = ("name", "metric", "market", "other", "symbol", "window_seconds", "filters",
               "filters-amount", "filters-payment", "filters-min_completion", "condition",
               "threshold", "low", "high", "direction", "for_seconds",
               "keep_firing_for_seconds", "repeat_seconds", "nodata_seconds", "nodata_state",
               "error_state", "labels", "note", "notify", "enabled", "form")
WINDOWS = {"300": "5 min", "900": "15 min", "3600": "1 h", "14400": "4 h", "86400": "1 day",
           "604800": "1 week"}
SPANS = {"1d": "last 24 h", "1w": "last 7 days"}
DEFAULT_METRIC = "p2p.best_ask"
DEFAULT_CONDITION = ">"


def error_slot(name: str) -> html.Div:
    """Where the message about one field goes."""
    return html.Div(id={"type": ids.ALERTS_FIELD_ERROR, "field": name},
                    className="invalid-feedback d-block small")


def labelled(label: str, control: Any, slot: str | None, width: int | str | None = None,
             part: str | None = None) -> dbc.Col:
    """A labelled control with its error slot; in a part the form may hide."""
    children = [dbc.Label(label, html_for=getattr(control, "id", None),
                          className="small text-body-secondary mb-1"), control]
    if slot:
        children.append(error_slot(slot))
    column = {"id": {"type": ids.ALERTS_GROUP, "part": part}} if part else {}
    return dbc.Col(children, md=width, className="mb-2", **column)


def text_input(component_id: str, placeholder: str = "", **extra: Any) -> dbc.Input:
    """A text field sent as typed (numbers stay exact decimals)."""
    return dbc.Input(id=component_id, type="text", size="sm", debounce=True,
                     placeholder=placeholder, **extra)


def choice(component_id: str, values: dict[str, str], value: str | None = None) -> dbc.Select:
    """A select of value -> label."""
    return dbc.Select(id=component_id, size="sm", value=value,
                      options=[{"label": label, "value": key} for key, label in values.items()])


def metric_choices() -> dict[str, str]:
    return {name: f"{name}: {metric.label}" for name, metric in METRICS.items()}


def condition_choices() -> dict[str, str]:
    return {name: f"{name} ({spec.label})" for name, spec in CONDITIONS.items()}


def subject_block() -> dbc.Row:
    """What the rule watches: metric, market(s) or symbol, window."""
    markets, symbols = market_keys(), list(spot_symbols())
    either = {"": "-"}
    return dbc.Row([
        labelled("Metric", choice(ids.ALERTS_FORM_METRIC, metric_choices(), DEFAULT_METRIC),
                 "metric", 12),
        labelled("Market", choice(ids.ALERTS_FORM_MARKET, {**either, **dict(zip(
            markets, markets, strict=True))}, markets[0] if markets else ""), "market", 6,
            part="market"),
        labelled("Versus market (sell side)", choice(ids.ALERTS_FORM_OTHER, {**either, **dict(
            zip(markets, markets, strict=True))}, markets[1] if len(markets) > 1 else ""),
            "other", 6, part="other"),
        labelled("Spot symbol", choice(ids.ALERTS_FORM_SYMBOL, {**either, **dict(zip(
            symbols, symbols, strict=True))}, ""), "symbol", 6, part="symbol"),
        labelled("Window", choice(ids.ALERTS_FORM_WINDOW, WINDOWS, "3600"), "window_seconds",
                 6, part="window"),
    ])


def filters_block() -> dbc.Row:
    """Which adverts count (metrics with offer filters only)."""
    return dbc.Row([
        labelled("Amount (fiat)", text_input(ids.ALERTS_FORM_AMOUNT, "any"), "filters-amount",
                 6),
        labelled("Min completion %", text_input(ids.ALERTS_FORM_COMPLETION, "any"),
                 "filters-min_completion", 6),
        labelled("Payment methods", dcc.Dropdown(id=ids.ALERTS_FORM_PAYMENT, multi=True,
                                                 placeholder="any", options=[], value=[]),
                 "filters-payment", 7),
        labelled("Merchants", dbc.Switch(id=ids.ALERTS_FORM_MERCHANT, label="merchants only",
                                         value=False), "filters", 5),
    ], id={"type": ids.ALERTS_GROUP, "part": "filters"})


def condition_block() -> dbc.Row:
    """When the rule holds: condition with its threshold, band or change window."""
    return dbc.Row([
        labelled("Condition", choice(ids.ALERTS_FORM_CONDITION, condition_choices(),
                                     DEFAULT_CONDITION), "condition", 5),
        labelled("Threshold", text_input(ids.ALERTS_FORM_THRESHOLD, "e.g. 1250.5"),
                 "threshold", 4, part="threshold"),
        labelled("Direction", choice(ids.ALERTS_FORM_DIRECTION, dict(zip(
            DIRECTIONS, DIRECTIONS, strict=True)), "either"), "direction", 3,
            part="direction"),
        labelled("Low", text_input(ids.ALERTS_FORM_LOW), "low", 3, part="band-low"),
        labelled("High", text_input(ids.ALERTS_FORM_HIGH), "high", 3, part="band-high"),
    ])


def timing_block() -> dbc.Row:
    """How long before firing and resolving, how often to remind, when data is stale."""
    return dbc.Row([
        labelled("For (s)", text_input(ids.ALERTS_FORM_FOR, "0"), "for_seconds", 3),
        labelled("Keep firing for (s)", text_input(ids.ALERTS_FORM_KEEP, "0"),
                 "keep_firing_for_seconds", 3),
        labelled("Repeat every (s)", text_input(ids.ALERTS_FORM_REPEAT, "14400"),
                 "repeat_seconds", 3),
        labelled("No data after (s)", text_input(ids.ALERTS_FORM_NODATA, "auto"),
                 "nodata_seconds", 3),
        labelled("If no data", choice(ids.ALERTS_FORM_NODATA_STATE, dict(zip(
            NODATA_MODES, NODATA_MODES, strict=True)), "nodata"), "nodata_state", 4),
        labelled("If the query fails", choice(ids.ALERTS_FORM_ERROR_STATE, dict(zip(
            ERROR_MODES, ERROR_MODES, strict=True)), "error"), "error_state", 4),
        labelled("Severity", choice(ids.ALERTS_FORM_SEVERITY, {"": "-", **dict(zip(
            SEVERITIES, SEVERITIES, strict=True))}, "warning"), None, 4),
        labelled("Other labels", text_input(ids.ALERTS_FORM_LABELS, "desk=ars, team=fx"),
                 "labels", 12),
    ])


def delivery_block() -> html.Div:
    """The note sent along, the contact points to notify and the on/off switch."""
    return html.Div([
        labelled("Note (sent with the notification)",
                 dbc.Textarea(id=ids.ALERTS_FORM_NOTE, size="sm", rows=2, debounce=True),
                 "note"),
        labelled("Notify", html.Div([
            dbc.Checklist(id=ids.ALERTS_FORM_NOTIFY, options=[], value=[], inline=True),
            html.Div("Contact points are added under Contact points.",
                     className="small text-body-secondary")]), "notify"),
        dbc.Switch(id=ids.ALERTS_FORM_ENABLED, label="enabled", value=True),
        error_slot("enabled"),
    ])


def form_buttons() -> html.Div:
    """Save, delete and test the rule in the form; what they did."""
    return html.Div([
        html.Div([
            dbc.Button([html.I(className="bi bi-check2 me-1"), "Save"], id=ids.ALERTS_SAVE,
                       color="primary", size="sm", className="me-2"),
            dbc.Button([html.I(className="bi bi-send me-1"), "Send test"], id=ids.ALERTS_TEST,
                       color="secondary", outline=True, size="sm", className="me-2"),
            dbc.Button([html.I(className="bi bi-trash me-1"), "Delete"], id=ids.ALERTS_DELETE,
                       color="danger", outline=True, size="sm"),
        ], className="d-flex"),
        error_slot("form"),
        html.Div(id=ids.ALERTS_FORM_FEEDBACK, className="mt-2", role="status"),
    ], className="mt-2")


def preview_block() -> html.Div:
    """The rule replayed over stored data while it is edited."""
    return html.Div([
        html.Div([html.H3("Preview", className="h6 mb-0 me-3"),
                  buttons(ids.ALERTS_PREVIEW_SPAN, SPANS, "1d")],
                 className="d-flex align-items-center mb-2"),
        html.Div(id=ids.ALERTS_PREVIEW_TEXT, className="small mb-1", role="status"),
        chart(ids.ALERTS_PREVIEW_GRAPH, height="42vh"),
    ])


def editor() -> dbc.Card:
    """The rule form and its preview (hidden until a rule is chosen or a new one begun)."""
    form = html.Div([
        labelled("Name", text_input(ids.ALERTS_FORM_NAME, "what it warns about"), "name"),
        subject_block(), filters_block(), condition_block(), timing_block(), delivery_block(),
        form_buttons(),
    ])
    return dbc.Card([
        dbc.CardHeader(html.Span("New rule", id=ids.ALERTS_EDITOR_TITLE)),
        dbc.CardBody(dbc.Row([dbc.Col(form, lg=5), dbc.Col(preview_block(), lg=7)])),
    ], id=ids.ALERTS_EDITOR, className="mt-3", style={"display": "none"})
