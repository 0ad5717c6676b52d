"""A site plan for people: the hosts' table with a timeline, then each drive's
volumes with what is read from each (the runbook's order); and as HTML."""

from __future__ import annotations

import html

from .schedule import SitePlan

BAR = 40  # columns of the timeline


def hm(seconds: float | None) -> str:
    """Seconds from the start as H:MM (the plan's clock starts at zero)."""
    if seconds is None:
        return "-"
    m = int(round(seconds / 60))
    return f"{m // 60}:{m % 60:02d}"


def gb(n: int) -> str:
    return f"{n / 1e9:.1f}"


def size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _bar(start, finish, span) -> str:
    if start is None or not span:
        return ""
    a = min(BAR - 1, int(start / span * BAR))
    b = max(a + 1, min(BAR, int(round(finish / span * BAR))))
    return " " * a + "#" * (b - a)


def summary(plan: SitePlan) -> list[str]:
    p, b = plan.params, plan.bound
    out = [f"site plan: {len(plan.hosts)} hosts, {len(plan.loads)} volume loads on "
           f"{p.drives} drive(s) at {p.throughput / 1e6:.0f} MB/s (a load {p.load_s:.0f} s, "
           f"a seek {p.seek_s:.0f} s, the server's rebuild {p.rebuild_s:.0f} s)",
           f"everything back after {hm(plan.makespan)} (h:mm); the server rebuilt at "
           f"{hm(plan.server_ready)}; no plan is shorter than {hm(plan.floor)} (with "
           f"the loads and seeks every plan makes; this one: "
           f"{plan.makespan / plan.floor if plan.floor else 1.0:.2f}x)"]
    return out


def host_table(plan: SitePlan) -> list[str]:
    span = plan.makespan
    out = [f"{'#':>4s} {'host':24s} {'role':14s} {'prio':>4s} {'DLEs':>4s} {'GB':>8s} "
           f"{'start':>6s} {'done':>6s}  timeline (0 to {hm(span)})"]
    for h in plan.hosts:
        role = ("Amanda server" if h.server else h.role or "")[:14]
        prio = "" if h.priority is None else str(h.priority)
        out.append(f"{h.rank:4d} {h.name[:24]:24s} {role:14s} {prio:>4s} {h.dles:4d} "
                   f"{gb(h.bytes):>8s} {hm(h.start):>6s} {hm(h.finish):>6s}  |"
                   f"{_bar(h.start, h.finish, span):{BAR}s}|")
    return out


def drive_lines(plan: SitePlan, reads: bool = True) -> list[str]:
    out = []
    for i, loads in enumerate(plan.drives, 1):
        out.append(f"drive {i}: {len(loads)} volume(s)")
        for ld in loads:
            hosts = sorted({r.host for r in ld.reads})
            out.append(f"  {hm(ld.loaded):>6s} load {ld.label}; read {hm(ld.start)}-{hm(ld.end)}: "
                       f"{len(ld.reads)} image file(s), {size(ld.bytes)}, {len(hosts)} host(s)")
            if reads:
                for r in ld.reads:
                    part = f" part {r.part}/{r.nparts}" if r.nparts > 1 else ""
                    est = " (size estimated)" if r.estimated else ""
                    out.append(f"    {hm(r.start):>6s} file {r.filenum:<5d} {r.host}:{r.disk} "
                               f"level {r.level} of {r.date}{part}, {size(r.bytes)}{est}")
    return out


def text(plan: SitePlan, errors=(), reads: bool = True) -> list[str]:
    out = summary(plan) + [""] + host_table(plan) + [""] + drive_lines(plan, reads)
    if plan.notes or errors:
        out.append("")
    out += [f"note: {n}" for n in plan.notes]
    out += [f"NOT PLANNED {h}:{d}: {m}" for h, d, m in errors]
    return out


def to_json(plan: SitePlan, errors=()) -> dict:
    doc = plan.to_dict()
    doc["errors"] = [{"host": h, "disk": d, "message": m} for h, d, m in errors]
    return doc


def to_html(plan: SitePlan, errors=()) -> str:
    """One page, no scripts: the summary, the hosts' table with bars, each
    drive's volumes and reads."""
    e = html.escape
    span = plan.makespan or 1.0
    rows = []
    for h in plan.hosts:
        left = 100 * (h.start or 0) / span
        width = max(0.5, 100 * ((h.finish or 0) - (h.start or 0)) / span)
        bar = (f'<div class=bar style="margin-left:{left:.1f}%;width:{width:.1f}%"></div>'
               if h.start is not None else "")
        rows.append(f"<tr><td class=n>{h.rank}</td><td>{e(h.name)}</td>"
                    f"<td>{e('Amanda server' if h.server else h.role or '')}</td>"
                    f"<td class=n>{'' if h.priority is None else h.priority}</td>"
                    f"<td class=n>{h.dles}</td><td class=n>{gb(h.bytes)}</td>"
                    f"<td class=n>{hm(h.start)}</td><td class=n>{hm(h.finish)}</td>"
                    f"<td class=t>{bar}</td></tr>")
    drives = []
    for i, loads in enumerate(plan.drives, 1):
        items = []
        for ld in loads:
            reads = "".join(
                f"<li>{hm(r.start)} file {r.filenum}: {e(r.host)}:{e(r.disk)} level {r.level}"
                f" of {e(r.date)}{f' part {r.part}/{r.nparts}' if r.nparts > 1 else ''}, "
                f"{size(r.bytes)}</li>" for r in ld.reads)
            items.append(f"<li><b>{hm(ld.loaded)} load {e(ld.label)}</b>, read "
                         f"{hm(ld.start)}-{hm(ld.end)}<ul>{reads}</ul></li>")
        drives.append(f"<h3>Drive {i}</h3><ol>{''.join(items)}</ol>")
    notes = "".join(f"<li>{e(n)}</li>" for n in plan.notes) + "".join(
        f"<li><b>not planned</b> {e(h)}:{e(d)}: {e(m)}</li>" for h, d, m in errors)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Site recovery plan</title>
<style>
body {{ font-family: sans-serif; font-size: 10pt; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 1px 6px; border-bottom: 1px solid #ddd; }}
td.n {{ text-align: right; }} td.t {{ width: 40em; }}
div.bar {{ background: #3a6; height: 0.8em; }}
</style></head><body>
<h1>Site recovery plan</h1>
<p>{'<br>'.join(e(line) for line in summary(plan))}</p>
<h2>Hosts, in the order they come back</h2>
<table><tr><th>#</th><th>host</th><th>role</th><th>priority</th><th>DLEs</th><th>GB</th>
<th>start</th><th>done</th><th>timeline (0 to {hm(plan.makespan)})</th></tr>
{''.join(rows)}</table>
<h2>Drives</h2>
{''.join(drives)}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
</body></html>
"""
