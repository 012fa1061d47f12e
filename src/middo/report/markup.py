"""Small HTML pieces shared by the report sections: tables with `missing` cells, missing-file notes."""

from __future__ import annotations

from html import escape


def missing(what: str) -> str:
    """A note that `what` does not exist (yet)."""
    return f'<p class="missing">{escape(what)}: missing</p>'


def table(rows: list[tuple], header: tuple) -> str:
    """An HTML table; None cells read `missing`."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def cell(value) -> str:
    """One escaped table cell; floats to 4 significant digits."""
    if value is None:
        return '<span class="missing">missing</span>'
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))
