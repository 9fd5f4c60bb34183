"""Page state in the URL query string: read it into filter values, write filter values back.

A page's layout(**params) gets the query parameters; `pick`, `pick_many`, `pick_number` and
`pick_flag` turn them into valid filter values (anything unknown falls back to the default,
so a stale bookmark still opens). A callback writes the filters back with `search()`, into a
dcc.Location of the page's own with refresh=False: the address changes (and can be
bookmarked, shared, or gone back to) without reloading or re-rendering the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from urllib.parse import urlencode

from dash import dcc

TRUE = ("1", "true", "yes", "on")


MAX_TEXT = 2000  # characters of one parameter read at all
NUMBER = re.compile(r"^[+-]?[0-9]{1,20}(\.[0-9]{1,20})?$")  # ASCII digits, no exponent
CODE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")


def _raw(params: Mapping[str, object], name: str) -> str | None:
    """One parameter as text: a repeated one (which Dash hands over as a list) joined with
    commas, anything else bounded in length; None when absent or not text at all."""
    value = params.get(name)
    if isinstance(value, list | tuple):
        value = ",".join(item for item in value if isinstance(item, str))
    if not isinstance(value, str):
        return None
    return value[:MAX_TEXT]


def pick(params: Mapping[str, object], name: str, choices: Iterable[str],
         default: str | None) -> str | None:
    """The parameter if it is one of `choices`, else the default (a repeated parameter:
    its first value)."""
    value = (_raw(params, name) or "").split(",")[0]
    return value if value in set(choices) else default


def pick_many(params: Mapping[str, object], name: str, choices: Iterable[str],
              default: Sequence[str] = ()) -> list[str]:
    """A comma-separated (or repeated) parameter, keeping known values once each in order,
    else the default."""
    known = set(choices)
    raw = _raw(params, name)
    if raw is None:
        return [value for value in default if value in known]
    return [value for value in dict.fromkeys(raw.split(",")) if value in known]


def pick_codes(params: Mapping[str, object], name: str) -> list[str]:
    """A comma-separated parameter of free codes (payment methods), once each, in order;
    anything that is not a plain code is dropped."""
    codes = dict.fromkeys((_raw(params, name) or "").split(","))
    return [code for code in codes if CODE.match(code)][:50]


def pick_number(params: Mapping[str, object], name: str, low: float = 0,
                high: float = 1e15) -> float | None:
    """A number parameter (plain ASCII digits) within [low, high], else None."""
    raw = (_raw(params, name) or "").strip()
    if not NUMBER.match(raw):
        return None
    value = Decimal(raw)
    if not low <= value <= high:
        return None
    return float(value)


def pick_flag(params: Mapping[str, object], name: str) -> bool:
    """A yes/no parameter (absent: no)."""
    return (_raw(params, name) or "").lower() in TRUE


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
