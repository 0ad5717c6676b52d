"""A host's runbook as one HTML document made for paper (pure).

Black on white, no colour that carries meaning, serif text and a monospace
face for commands, tables with ruled lines: it must read the same out of a
black-and-white printer.  Commands are in <pre class=sh> blocks, one line a
command as typed (a here-document's lines follow its command), so a test or
a person can copy them; long lines wrap where they must.
"""

from __future__ import annotations

import html

from .content import HostRunbook
from .hand import Block

# A4, page numbers and the host on every page (WeasyPrint reads @page margin boxes)
PRINT_CSS = """
@page { size: A4; margin: 14mm 13mm 16mm 13mm;
  @top-right { content: "@TITLE@"; font: 8pt "DejaVu Sans", sans-serif; }
  @bottom-right { content: "page " counter(page) " of " counter(pages);
                  font: 8pt "DejaVu Sans", sans-serif; } }
html { font: 9.5pt/1.3 "DejaVu Serif", serif; color: #000; background: #fff; }
h1 { font: bold 17pt "DejaVu Sans", sans-serif; margin: 0 0 4pt 0; }
h2 { font: bold 12.5pt "DejaVu Sans", sans-serif; border-bottom: 1.5pt solid #000;
     margin: 12pt 0 4pt 0; page-break-after: avoid; }
h3 { font: bold 10.5pt "DejaVu Sans", sans-serif; margin: 8pt 0 2pt 0;
     page-break-after: avoid; }
h4 { font: bold 9.5pt "DejaVu Sans", sans-serif; margin: 5pt 0 1pt 0;
     page-break-after: avoid; }
p, ul, ol { margin: 2pt 0 4pt 0; }
table { border-collapse: collapse; margin: 2pt 0 6pt 0; page-break-inside: avoid;
        max-width: 100%; }
th, td { border: 0.6pt solid #000; padding: 1pt 4pt; text-align: left;
         vertical-align: top; }
th { font: bold 8.5pt "DejaVu Sans", sans-serif; background: #e8e8e8; }
td.n { text-align: right; white-space: nowrap; }
td.m { font-size: 7pt; overflow-wrap: anywhere; word-break: break-all; }
td.k { font-weight: bold; white-space: nowrap; }
code, pre, td.m { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }
pre.sh { border-left: 2pt solid #000; padding: 2pt 0 2pt 5pt; margin: 2pt 0 5pt 0;
         white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-all;
         page-break-inside: avoid; }
/* one command a line; a line too long for the page goes on indented, so a
   wrapped command never reads as two */
pre.sh span.l { display: block; padding-left: 2.5em; text-indent: -2.5em;
                min-height: 1em; }
.note { font-style: italic; }
.warn { font-weight: bold; }
tr, pre.sh { break-inside: avoid; }
@media screen { html { max-width: 60em; margin: 1em auto; } }
"""

e = html.escape


def table(head: list[str], rows: list[list], mono: set[int] = frozenset(),
          num: set[int] = frozenset()) -> str:
    h = "".join(f"<th>{e(x)}</th>" for x in head)
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            cls = " class=m" if i in mono else " class=n" if i in num else ""
            cells.append(f"<td{cls}>{e(str(v))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{h}</tr>{''.join(body)}</table>"


def pairs(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><td class=k>{e(k)}</td><td>{e(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def commands(lines: list[str]) -> str:
    """Lines to type, each its own block (hand.py's lines: a command, a comment,
    a here-document's line)."""
    return "<pre class=sh>" + "".join(f"<span class=l>{e(ln)}</span>" for ln in lines) \
        + "</pre>"


def typed_blocks(document: str) -> list[list[str]]:
    """The command blocks of a document, each as its lines (what a person
    copies from it): for the tests, and for anyone scripting from a runbook."""
    import re
    return [[html.unescape(x) for x in re.findall(r"<span class=l>(.*?)</span>", pre, re.S)]
            for pre in re.findall(r"<pre class=sh>(.*?)</pre>", document, re.S)]


def block(b: Block, level: int = 4) -> str:
    out = [f"<h{level}>{e(b.title)}</h{level}>"] if b.title else []
    if b.lines:
        out.append(commands(b.lines))
    out += [f"<p class=note>{e(n)}</p>" for n in b.notes]
    return "".join(out)


def document(r: HostRunbook) -> str:
    title = f"Recovery runbook: {r.host}"
    css = PRINT_CSS.replace("@TITLE@", e(title).replace("\"", "'"))
    s = [f"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>{e(title)}</title>"
         f"<style>{css}</style></head><body>", f"<h1>{e(title)}</h1>",
         "<p>Everything needed to bring this host back from its Amanda backups, with "
         "amanda-dr or by hand from a plain rescue system. No passphrase, key or password "
         "is in it: LUKS passphrases are asked by cryptsetup, the bundle's keys stay in the "
         "site's keyring.</p>"]
    s.append("<h2>1. Identity</h2>" + pairs(r.identity))
    s += [f"<p class=warn>{e(n)}</p>" for n in r.notes]

    s.append("<h2>2. Disks</h2>")
    s.append(table(["disk", "model", "serial", "size", "bytes", "partition table"],
                   [[d["path"], d["model"], d["serial"], d["size"], d["bytes"], d["table"]]
                    for d in r.disks], mono={0, 5}, num={4}))
    if r.partitions:
        s.append("<h3>Partitions</h3>" + table(
            ["#", "device", "start", "sectors", "size", "type", "name", "PARTUUID"],
            [[p["number"], p["path"], p["start"], p["sectors"], p["size"], p["type"],
              p["name"], p["partuuid"]] for p in r.partitions],
            mono={1, 5, 7}, num={0, 2, 3, 4}))
    if r.stacks:
        s.append("<h3>RAID, LVM, LUKS</h3>" + pairs(r.stacks))
    s.append("<h3>Filesystems</h3>" + table(
        ["device", "type", "UUID", "label", "mountpoint", "used"],
        [[f["device"], f["type"], f["uuid"], f["label"], f["mountpoint"], f["used"]]
         for f in r.filesystems], mono={0, 2}))
    s.append("<h3>Boot</h3>" + pairs(r.boot))

    s.append("<h2>3. Network</h2>")
    if r.interfaces:
        s.append(table(["interface", "MAC", "addresses", "hardware"],
                       [[i["name"], i["mac"], i["addresses"], i["hw"]] for i in r.interfaces],
                       mono={1, 2}))
    if r.routes:
        s.append("<p><b>Routes:</b> " + e("; ".join(r.routes)) + "</p>")
    s.append(pairs(r.dns))

    s.append("<h2>4. Restore: every DLE's chain</h2>")
    if not r.restores:
        s.append("<p class=warn>No DLE of this host can be restored from what was known "
                 "when this runbook was made.</p>")
    for d in r.restores:
        s.append(f"<h3>{e(d.host)}:{e(d.disk)}</h3>"
                 f"<p>{e(d.program)}, was <code>{e(d.original)}</code>, restored into "
                 f"<code>{e(d.directory)}</code>. Volumes in order: "
                 f"<b>{e(', '.join(d.volumes))}</b></p>")
        s.append(table(["level", "date", "volume label", "file", "part", "size"],
                       [[i["level"], i["date"], i["label"], i["filenum"], i["part"], i["size"]]
                        for i in d.images], mono={2}, num={0, 3, 5}))
    for err in r.errors:
        s.append(f"<p class=warn>NOT RESTORABLE: {e(err)}</p>")

    s.append("<h2>5. With amanda-dr: three steps on the live image</h2><ol>")
    for what, cmd in r.live_steps:
        s.append(f"<li>{e(what)}{commands([cmd])}</li>")
    s.append("</ol><p>Add <code>--gnupghome DIR</code> (the site's recovery key) and, when "
             "the disks here have other names, <code>--map ORIGINAL=NEW</code>.</p>")

    s.append("<h2>6. By hand, when no tool works</h2>"
             f"<p>As root on a rescue system (Debian's has every command below but Amanda's: "
             f"<code>apt-get install amanda-server</code>, or use the forms without "
             f"Amanda). The system is rebuilt under <code>{e(r.target)}</code>.</p>"
             "<h3>6.1 Disks: partitions, filesystems (original UUIDs and labels), mounts</h3>")
    s += [f"<p class=note>{e(n)}</p>" for n in r.disk_notes]
    s += [block(b) for b in r.disk_blocks]
    s.append("<h3>6.2 Restores, parents first</h3><p>Each DLE once, in this order; each image "
             "of its chain in order, level 0 first. Pick the form of your volumes.</p>")
    for d in r.restores:
        s.append(f"<h4>{e(d.host)}:{e(d.disk)} into {e(d.directory)}</h4>")
        s += [block(b, 5).replace("<h5>", "<p><b>").replace("</h5>", "</b></p>")
              for b in d.blocks]
    s.append("<h3>6.3 Make it boot</h3>"
             "<p>What <code>amdr-recover finalize</code> does in the usual case; on other "
             "hardware check /etc/fstab, /etc/crypttab, /etc/mdadm/mdadm.conf and the "
             "network configuration first.</p>"
             + commands(r.boot_steps))
    s.append("</body></html>\n")
    return "\n".join(s)
