"""The screens' widgets (urwid).  A view shows what its controller gives it and
calls the controller back; it never calls the engine.  Each view has the
methods an answers file uses (`choose`, `enter`), the same a key press ends
in, so answers and keystrokes take one path.  80x24 and monochrome: focus
is shown by reverse video ('standout'), nothing depends on colour.
"""

from __future__ import annotations

import urwid

PALETTE = [
    ("title", "bold", "", "bold"),
    ("focus", "standout", "", "standout"),
    ("warn", "bold", "", "bold"),
    ("dim", "", "", ""),
    ("bar-done", "standout", "", "standout"),
    ("bar-todo", "", "", ""),
]


class Picked(urwid.Button):
    """A line to choose: Enter or Space picks it."""

    button_left = urwid.Text("")
    button_right = urwid.Text("")


class ChoiceView(urwid.WidgetWrap):
    """Lines of text above, then a list to choose from."""

    def __init__(self, above: list[str], items: list[tuple[str, object]], on_pick,
                 below: list[str] = ()):
        self.items = items
        self.on_pick = on_pick
        self.message = urwid.Text("")
        buttons = []
        for label, value in items:
            b = Picked(label)
            urwid.connect_signal(b, "click", lambda _b, v=value: self.choose(v))
            buttons.append(urwid.AttrMap(b, None, focus_map="focus"))
        self.walker = urwid.SimpleFocusListWalker(buttons)
        parts = [urwid.Text(t) for t in above] + [urwid.Divider()]
        body = urwid.Pile([("pack", p) for p in parts]
                          + [urwid.BoxAdapter(urwid.ListBox(self.walker),
                                              max(1, min(len(items), 10)))]
                          + [("pack", urwid.Divider())]
                          + [("pack", urwid.Text(t)) for t in below]
                          + [("pack", self.message)])
        super().__init__(urwid.Filler(body, valign="top"))

    def choose(self, value) -> None:
        self.on_pick(value)

    def say(self, text: str) -> None:
        self.message.set_text(("warn", text))


class AskView(urwid.WidgetWrap):
    """Lines of text above, then one line to type (masked for a passphrase)."""

    def __init__(self, above: list[str], prompt: str, on_enter, mask: str | None = None,
                 default: str = ""):
        self.on_enter = on_enter
        self.edit = urwid.Edit(prompt, default, mask=mask)
        self.message = urwid.Text("")
        pile = urwid.Pile([urwid.Text(t) for t in above]
                          + [urwid.Divider(), urwid.AttrMap(self.edit, None, "focus"),
                             urwid.Divider(), self.message])
        pile.focus_position = len(above) + 1
        super().__init__(urwid.Filler(pile, valign="top"))

    def keypress(self, size, key):
        if key == "enter":
            self.enter(self.edit.edit_text)
            return None
        return super().keypress(size, key)

    def enter(self, text: str) -> None:
        self.on_enter(text)

    def say(self, text: str) -> None:
        self.edit.set_edit_text("")
        self.message.set_text(("warn", text))


class InfoView(urwid.WidgetWrap):
    """Text to read (scrolls), and Enter to go on."""

    def __init__(self, lines: list[str], on_enter=None, hint: str = "Enter: go on"):
        self.on_enter = on_enter
        self.walker = urwid.SimpleFocusListWalker([urwid.Text(t) for t in lines]
                                                  + [urwid.Divider(), urwid.Text(("dim", hint))])
        super().__init__(urwid.ListBox(self.walker))

    def keypress(self, size, key):
        if key == "enter" and self.on_enter is not None:
            self.on_enter()
            return None
        return super().keypress(size, key)

    def add(self, line: str) -> None:
        self.walker.insert(len(self.walker) - 2, urwid.Text(line))


def bar(done: float, width: int = 20) -> str:
    """A progress bar in plain characters: [#####.....]."""
    n = int(round(max(0.0, min(1.0, done)) * width))
    return "[" + "#" * n + "." * (width - n) + "]"


def seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


class RunView(urwid.WidgetWrap):
    """The recovery running: the step, a row per DLE, an overall bar, the last lines."""

    def __init__(self, host: str, dles: list[str], total: int | None):
        self.dles = {d: {"state": "waiting", "done": 0, "total": None, "rate": 0.0,
                         "eta": None, "level": None, "image": 0, "images": 0} for d in dles}
        self.total = total
        self.step = urwid.Text("starting")
        self.table = urwid.Pile([urwid.Text("")])
        self.overall = urwid.Text("")
        self.tail = urwid.SimpleFocusListWalker([])
        body = urwid.Pile([("pack", urwid.Text(("title", f"Recovering {host}"))),
                           ("pack", self.step), ("pack", urwid.Divider()),
                           ("pack", self.table), ("pack", urwid.Divider()),
                           ("pack", self.overall), ("pack", urwid.Divider()),
                           urwid.ListBox(self.tail)])
        super().__init__(body)
        self.redraw()

    def event(self, ev: dict) -> None:
        k = ev.get("kind")
        if k == "step":
            self.step.set_text(f"{ev.get('step')}: {ev.get('state')}"
                               + (f" ({ev['detail']})" if ev.get("detail") else ""))
        elif k == "progress" and ev.get("dle") in self.dles:
            self.dles[ev["dle"]].update(state="restoring", **{x: ev.get(x) for x in (
                "done", "total", "rate", "eta", "level", "image", "images")})
        elif k == "dle" and ev.get("dle") in self.dles:
            row = self.dles[ev["dle"]]
            row["state"] = ev.get("state")
            if ev.get("state") == "done" and row.get("total"):
                row["done"] = row["total"]
        self.redraw()

    def line(self, text: str) -> None:
        self.tail.append(urwid.Text(text))
        if len(self.tail) > 200:
            del self.tail[0]
        self.tail.set_focus(len(self.tail) - 1)

    def redraw(self) -> None:
        rows = []
        done_all = 0
        rate_all = 0.0
        for d, r in self.dles.items():
            tot = r.get("total")
            frac = (r["done"] / tot) if tot else (1.0 if r["state"] == "done" else 0.0)
            done_all += r["done"] or 0
            if r["state"] == "restoring":
                rate_all += r.get("rate") or 0.0
            lvl = f"L{r['level']} {r['image']}/{r['images']}" if r.get("images") else ""
            mb = f"{(r['done'] or 0) / 1e6:.0f}/{tot / 1e6:.0f} MB" if tot else ""
            rate = f"{(r.get('rate') or 0) / 1e6:.1f} MB/s" if r["state"] == "restoring" else ""
            eta = seconds(r.get("eta")) if r["state"] == "restoring" else r["state"]
            rows.append(urwid.Text(f"{d[-22:]:22s} {lvl:8s} {bar(frac, 12)} {mb:13s} "
                                   f"{rate:10s} {eta}"))
        self.table.contents = [(w, ("pack", None)) for w in rows] or [(urwid.Text(""),
                                                                       ("pack", None))]
        if self.total:
            frac = min(1.0, done_all / self.total)
            eta = (self.total - done_all) / rate_all if rate_all > 0 else None
            self.overall.set_text(f"all    {bar(frac, 40)} {100 * frac:3.0f}%  "
                                  f"ETA {seconds(eta)}")
        else:
            self.overall.set_text(f"all    {done_all / 1e6:.0f} MB")


def dialog(lines: list[str], items: list[tuple[str, object]], on_pick,
           under: urwid.Widget, title: str = "a person must decide",
           width: int = 76) -> tuple[urwid.Overlay, ChoiceView]:
    """A question in a box over the screen it interrupts: the text, the
    choices (Enter picks), the screen still seen around it."""
    def rows_of(t):
        return len(urwid.Text(t).render((width - 2,)).text)

    room = 22 - len(items) - 5
    if sum(rows_of(t) for t in lines) > room:  # the first line and the last ones fit
        head, tail = lines[:1], []
        left = room - rows_of(lines[0]) - 1
        for t in reversed(lines[1:]):
            if rows_of(t) > left:
                break
            tail.insert(0, t)
            left -= rows_of(t)
        lines = head + ["... (the whole message: F2, the log)"] + tail
    view = ChoiceView(lines, items, on_pick)
    rows = sum(rows_of(t) for t in lines)
    box = urwid.LineBox(view, title=title)
    return urwid.Overlay(box, under, align="center", width=("relative", 96),
                         valign="middle", height=min(22, rows + len(items) + 5),
                         min_width=40), view


def frame(title: str, step: str, body: urwid.Widget, keys: str) -> urwid.Frame:
    head = urwid.Text([("title", f" amanda-dr recovery: {title}"), f"   {step}"])
    foot = urwid.Text(("dim", keys))
    return urwid.Frame(body, header=urwid.Pile([head, urwid.Divider("-")]),
                       footer=urwid.Pile([urwid.Divider("-"), foot]))


def text_of(widget: urwid.Widget, size=(80, 24)) -> str:
    """What a widget shows at `size`: for view tests and captured screens."""
    canvas = widget.render(size, focus=True)
    return "\n".join(line.decode("utf-8", "replace").rstrip() for line in canvas.text)
