"""Page state in the URL query string: read it into filter values, write filter values back.

A page's layout(**params) gets the query parameters; `pick`, `pick_many`, `pick_number` and
`pick_flag` turn them into valid filter values (anything unknown falls back to the default,
so a stale bookmark still opens). A callback writes the filters back with `search()`, into a
dcc.Location of the page's own with refresh=False: the address changes (and can be
bookmarked, shared, or gone back to) without reloading or re-rendering the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from dash import dcc

TRUE = ("1", "true", "yes", "on")


def pick(params: Mapping[str, str], name: str, choices: Iterable[str],
         default: str | None) -> str | None:
    """The parameter if it is one of `choices`, else the default."""
    value = params.get(name)
    return value if value in set(choices) else default


def pick_many(params: Mapping[str, str], name: str, choices: Iterable[str],
              default: Sequence[str] = ()) -> list[str]:
    """A comma-separated parameter, keeping known values in order, else the default."""
    known = set(choices)
    raw = params.get(name)
    if raw is None:
        return [value for value in default if value in known]
    return [value for value in dict.fromkeys(raw.split(",")) if value in known]


def pick_codes(params: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated parameter of free codes (payment methods), once each, in order."""
    return [code for code in dict.fromkeys((params.get(name) or "").split(",")) if code]


def pick_number(params: Mapping[str, str], name: str, low: float = 0,
                high: float = 1e15) -> float | None:
    """A number parameter within [low, high], else None."""
    try:
        value = Decimal(params.get(name) or "")
    except InvalidOperation:
        return None
    if not value.is_finite() or not low <= value <= high:
        return None
    return float(value)


def pick_flag(params: Mapping[str, str], name: str) -> bool:
    """A yes/no parameter (absent: no)."""
    return (params.get(name) or "").lower() in TRUE


def _text(value: object) -> str | None:
    if value is None or value is False or value in ("", []):
        return None
    if value is True:
        return "1"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def search(values: Mapping[str, object]) -> str:
    """A query string ("?a=1&b=x,y") of the values that are set, in the given order."""
    pairs = [(name, text) for name, value in values.items()
             if (text := _text(value)) is not None]
    return "?" + urlencode(pairs, safe=",:/") if pairs else ""


def location(component_id: str) -> dcc.Location:
    """The page's own address bar handle: written by callbacks, never reloading the page."""
    return dcc.Location(id=component_id, refresh=False)
