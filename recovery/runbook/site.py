"""The site's runbook: the site plan (siteplan/show.py) made for paper.

The plan's own HTML is the body; this adds the print CSS (A4, page numbers,
ruled tables, the timeline's bars in black) and, per host in the order they
come back, the command that makes its own runbook.
"""

from __future__ import annotations

import html

from ..siteplan import show
from .page import PRINT_CSS

SITE_CSS = """
div.bar { background: #000 !important; height: 0.7em; }
td.t { width: 11em; }  /* the table fits the A4 page's width */
"""


def document(plan, errors=(), bundles: dict | None = None) -> str:
    """bundles: Amanda host -> the file name of its bundle in the store (the
    command that makes each host's runbook names it)."""
    body = show.to_html(plan, errors)
    title = "Site recovery runbook"
    css = PRINT_CSS.replace("@TITLE@", title) + SITE_CSS
    # the plan's page, its screen style followed by the print style (later wins)
    body = body.replace("</style>", css + "</style>", 1)
    body = body.replace("<title>Site recovery plan</title>", f"<title>{title}</title>", 1)
    e = html.escape
    bundles = bundles or {}
    server = next((bundles.get(h.name) for h in plan.hosts if h.server), None)

    def name(h):
        return bundles.get(h.name) or f"{h.name}-YYYYMMDDTHHMMSSZ.amdr.gpg"

    hosts = "".join(
        f"<li><b>{e(h.name)}</b>: <code>amdr-recover runbook --bundle {e(name(h))}"
        f"{'' if h.server else ' --catalog-bundle ' + e(server or 'SERVER.amdr.gpg')} "
        f"--out {e(h.name)}.pdf</code></li>" for h in plan.hosts)
    extra = (f"<h2>Each host's runbook</h2><p>In the order above; each says how to restore "
             f"the host with amanda-dr or by hand.</p><ol>{hosts}</ol>")
    return body.replace("</body>", extra + "</body>", 1)
