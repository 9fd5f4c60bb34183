"""The Download menu of a chart's header: CSV, Excel and Parquet links to /export/<dataset>.

Only analysts and admins get the menu (the export route refuses everyone else anyway).
Its items come from a callback (callbacks/download.py) that follows the page's controls;
until it answers, the menu holds one disabled item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from app.auth.users import current_role
from app.exports import EXPORTERS

# A link group: a heading (None for a menu of one group) and its (key, label, href) links.
Link = tuple[str, str, str]
Group = tuple[str | None, Sequence[Link]]


def can_download() -> bool:
    """Whether the signed-in user may take exports (analysts and admins)."""
    return current_role() in EXPORTERS


def menu_items(menu_id: str, groups: Sequence[Group]) -> list[dbc.DropdownMenuItem]:
    """The menu's items: per group an optional heading, then one plain link per format."""
    items: list[dbc.DropdownMenuItem] = []
    for index, (heading, links) in enumerate(groups):
        if heading:
            items.append(dbc.DropdownMenuItem(heading, header=True))
        items += [dbc.DropdownMenuItem(label, href=href, external_link=True,
                                       id=f"{menu_id}-{index}-{key}")
                  for key, label, href in links]
    return items or [dbc.DropdownMenuItem("Nothing to download", disabled=True)]


def download_menu(menu_id: str) -> dbc.DropdownMenu:
    """The "Download" menu (its links arrive from the page's controls)."""
    return dbc.DropdownMenu(menu_items(menu_id, []), id=menu_id, label="Download",
                            size="sm", color="secondary", align_end=True)


def chart_header(title: Any, menu_id: str, title_class: str = "h6 mb-0") -> html.Div:
    """A chart's header: its title and, for analysts and admins, the Download menu."""
    menu = [download_menu(menu_id)] if can_download() else []
    if not title and not menu:
        return html.Div()
    heading = html.H3(title, className=title_class) if title else html.Span()
    return html.Div([heading, *menu],
                    className="d-flex justify-content-between align-items-center mb-1")
