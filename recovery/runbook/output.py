"""Writing a runbook: HTML as it is, PDF through WeasyPrint's command.

WeasyPrint runs as a command through the runner (like every other tool: it
is in the inventory, logged, checked by doctor), so the product imports no
PDF library and a system without it still writes HTML.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from essentials.errors import ConfigError
from essentials.runner import Runner

FORMATS = (".html", ".htm", ".pdf")


def kind(out) -> str:
    ext = Path(out).suffix.lower()
    if ext not in FORMATS:
        raise ConfigError(f"--out {out}: the name must end in .html or .pdf (which says "
                          f"what to write)")
    return "pdf" if ext == ".pdf" else "html"


def write(document: str, out, runner: Runner | None = None) -> Path:
    """Write `document` (HTML) to `out`: .html as it is, .pdf rendered."""
    out = Path(out)
    if kind(out) == "html":
        out.write_text(document, encoding="utf-8")
        return out
    runner = runner or Runner()
    from essentials import doctor
    doctor.require(["weasyprint"], "a PDF runbook (write .html instead)")
    fd, tmp = tempfile.mkstemp(suffix=".html", dir=str(out.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(document)
        # -e utf-8: the document's encoding whatever the locale; -q: no font chatter
        runner.run(["weasyprint", "-q", "-e", "utf-8", tmp, str(out)],
                   what=f"rendering {out.name}")
    finally:
        os.unlink(tmp)
    return out
