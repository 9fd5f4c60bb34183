"""AG Grid tables of plain rows, shared by the pages: one theme that follows Bootstrap's
colour mode, numbers formatted in the browser, compact rows.

Rows travel as plain dicts (rowData) and the column definitions stay in the layout, so a live
refresh sends only the numbers. Formats and colour rules are JavaScript strings that
dash-ag-grid evaluates in the browser (`d3` is in their scope); the colours are CSS classes
in assets/grid.css.
"""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag

ROW_HEIGHT = 28
HEADER_HEIGHT = 32
VISIBLE_ROWS = 15
# The grid's border and room for a horizontal scrollbar, so the last row stays in view.
FRAME = 2 + 16

# Quartz with Bootstrap's colours as CSS variables: [data-bs-theme=dark] on <html> repaints
# every grid in place, with no callback and no second theme. The font is the page's (Quartz
# would ask for a web font, and no CDN is reachable).
THEME = {"function": (
    "themeQuartz.withParams({"
    "backgroundColor: 'var(--bs-body-bg)', foregroundColor: 'var(--bs-body-color)', "
    "headerBackgroundColor: 'var(--bs-tertiary-bg)', borderColor: 'var(--bs-border-color)', "
    "accentColor: 'var(--bs-primary)', browserColorScheme: 'inherit', "
    "fontFamily: 'inherit', fontSize: 13, headerFontWeight: 600, spacing: 4, "
    f"rowHeight: {ROW_HEIGHT}, headerHeight: {HEADER_HEIGHT}, wrapperBorderRadius: 4}})")}


def number_format(spec: str) -> dict[str, str]:
    """A valueFormatter applying a d3-format specifier; a missing value shows blank."""
    return {"function": f"params.value == null ? '' : d3.format('{spec}')(params.value)"}


PRICE = number_format(",.6~f")  # grouped, up to six decimals, trailing zeros trimmed
AMOUNT = number_format(",.2f")
WHOLE = number_format(",.0f")
PERCENT = number_format(".3f")
CHANGE = number_format("+.3f")  # signed, so a rise reads as one


def header_width(header: str) -> int:
    """The narrowest a column may get and still show its whole header and filter button."""
    return 7 * len(header) + 48


def text_column(field: str, header: str, **options: Any) -> dict[str, Any]:
    """A left-aligned text column, sorted and filtered as text."""
    return {"field": field, "headerName": header, "cellDataType": "text",
            "minWidth": header_width(header), **options}


def number_column(field: str, header: str, value_format: dict[str, str] | None = None,
                  **options: Any) -> dict[str, Any]:
    """A right-aligned number column, sorted and filtered as numbers, shown in a format."""
    formatter = {"valueFormatter": value_format} if value_format else {}
    return {"field": field, "headerName": header, "cellDataType": "number",
            "type": "rightAligned", "minWidth": header_width(header), **formatter, **options}


def fitted_height(row_count: int) -> dict[str, str]:
    """A grid's style: tall enough for its rows up to VISIBLE_ROWS, beyond that it scrolls
    (and draws only the rows in view)."""
    rows = min(max(row_count, 2), VISIBLE_ROWS)
    return {"height": f"{HEADER_HEIGHT + rows * ROW_HEIGHT + FRAME}px"}


def grid(grid_id: str, columns: list[dict[str, Any]], *, row_id: str | None = None,
         floating_filters: bool = False, style: dict[str, str] | None = None,
         **options: Any) -> dag.AgGrid:
    """A sortable, filterable, resizable grid of plain rows (filters under the headers when
    `floating_filters`); `row_id` names the field that identifies a row, so a refresh
    updates rows in place, keeping the sort, the filter and the scroll."""
    identity = {"getRowId": f"params.data.{row_id}"} if row_id else {}
    return dag.AgGrid(
        id=grid_id, rowData=[], columnDefs=columns, **identity,
        defaultColDef={"sortable": True, "filter": True, "floatingFilter": floating_filters,
                       "resizable": True, "flex": 1},
        dashGridOptions={"theme": THEME, "suppressColumnVirtualisation": True,
                         "enableCellTextSelection": True, "ensureDomOrder": True, **options},
        style=fitted_height(0) if style is None else style, className="p2p-grid")
