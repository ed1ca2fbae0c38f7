"""The report page: sections in order, each a heading, a sentence on how to read it, and its
figures and tables; plotly.js inlined once in the head, so the file works offline."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from plotly.offline import get_plotlyjs

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0 auto;
       max-width: 1600px; padding: 0 16px 32px; color: #222; }
h1 { font-size: 24px; margin: 20px 0 4px; } h2 { font-size: 20px; margin: 28px 0 4px; }
h3 { font-size: 16px; margin: 18px 0 4px; }
p.note { color: #555; margin: 4px 0 10px; max-width: 1000px; }
nav a { margin-right: 14px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 12px; }
.figure { min-width: 0; border: 1px solid #eee; border-radius: 4px; }
.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
table.data th, table.data td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4;
       text-align: right; white-space: nowrap; }
table.data th:first-child, table.data td:first-child { text-align: left; }
table.data th { background: #f6f6f6; }
@media (max-width: 700px) { .grid { grid-template-columns: 1fr; } }
"""


#: Figures are drawn as the page is parsed, before the grid around them is complete: once it
#: is, each is redrawn at its final width.
RESIZE = """window.addEventListener('load', () => document.querySelectorAll('.js-plotly-plot')
  .forEach(p => Plotly.Plots.resize(p)));"""


@dataclass
class Section:
    """One part of the report: its anchor, heading, how to read it, and its HTML blocks."""

    anchor: str
    title: str
    note: str
    blocks: list[str] = field(default_factory=list)

    def html(self) -> str:
        body = "".join(self.blocks)
        return (
            f"<section id='{self.anchor}'><h2>{html.escape(self.title)}</h2>"
            f"<p class='note'>{self.note}</p>{body}</section>"
        )


def grid(blocks: Sequence[str]) -> str:
    """Figures side by side where the page is wide, one above the other where it is narrow."""
    return f"<div class='grid'>{''.join(blocks)}</div>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """An HTML table of text cells (escaped), first column left-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    title = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f"<div class='scroll'><table class='data'>{title}<tr>{head}</tr>{body}</table></div>"


def page(title: str, sections: Sequence[Section], inputs: Sequence[str]) -> str:
    """The whole HTML document."""
    nav = "".join(f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections)
    given = ", ".join(html.escape(i) for i in inputs)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='note'>from {given}</p><nav>{nav}</nav>"
        f"{''.join(s.html() for s in sections)}<script>{RESIZE}</script></body></html>"
    )
