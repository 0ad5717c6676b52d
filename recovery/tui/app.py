"""`amdr-recover tui`: the recovery as screens (urwid), for the field engineer.

The screens come in ORDER (screens.py).  A screen whose defaults are right
(the doctor found every tool, bundles were found, the key needs no
passphrase, the disks match, every DLE can be restored) is passed without a
stop; Esc goes back to it.  An answers file (recovery/answers.py) answers
screens through their views; a screen it does not answer waits for a person.
Without a terminal the same answers run headless with plain lines, and a
screen left unanswered ends the run (exit 4) before anything is wiped.

The recovery itself runs as the engine's command (`amdr-recover recover`) in
a child process that reports through events (recovery/events.py); the Run
screen draws them, and its output is the log (F2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import urwid

from essentials.errors import EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED, AmdrError

from .. import events as events_mod
from . import screens, views
from .model import Model


class App:
    def __init__(self, model: Model, answers=None, headless: bool = False):
        self.model = model
        self.answers = answers
        self.headless = headless
        self.screens = [cls(self) for cls in screens.ORDER]
        self.index = -1
        self.loop = None
        self.frame = None
        self.decisions = 0  # screens a person (or an answer) had to stop at
        self.result = None  # the engine's exit code
        self.report: dict = {}
        self.after = "wait"
        self.stopped = None  # why a headless run stopped early
        self.doctor_ok, self.doctor_line = self._doctor()
        self._child = None
        self._events_buf = b""
        self._out_buf = b""
        self._replies = None
        self.dialog_view = None
        self.step_times: dict = {}

    # -- what every screen may show ---------------------------------------------------
    def _doctor(self) -> tuple[bool, str]:
        done = Path("/run/amanda-dr/doctor.txt")  # the live system's, made at boot
        if done.exists():
            line = done.read_text().strip()
            return "all present" in line, line
        from essentials import doctor
        rep = doctor.examine(("recovery",))
        return not rep.failed, doctor.summary(rep, "amanda-dr")

    def network_text(self) -> str:
        r = subprocess.run(["ip", "-br", "-4", "addr", "show", "scope", "global"],
                           capture_output=True, text=True)
        return "; ".join(" ".join(ln.split()) for ln in r.stdout.splitlines() if ln.strip())

    def set_network(self, value: str) -> None:
        """dhcp, none, static:...; original waits for the bundle (after unlock)."""
        from .. import unattended
        if value == "original":
            if self.model.bundle is None:
                self.model.network_later = value
                self.say("network original: set once the bundle is open")
                return
            value = unattended.bundle_network(self.model.bundle, self.say)
            if value is None:
                return
        for line in unattended.set_network(value):
            self.say(line)

    def say(self, line: str) -> None:
        self.model.say(line)
        if self.headless:
            print(f"tui: {line}", flush=True)

    # -- the flow ---------------------------------------------------------------------
    def current(self) -> screens.Screen:
        return self.screens[self.index]

    def next_screen(self) -> None:
        while True:
            self.index += 1
            if self.index >= len(self.screens):
                self.quit()
                return
            sc = self.screens[self.index]
            if sc.name == "disks" and self.model.network_later:
                self.set_network(self.model.network_later)  # the bundle is open now
                self.model.network_later = None
            if sc.name == "disks" and self.model.assist_later:
                self.model.assist_later = False
                self.assist_call()
            answered = self.answers is not None and sc.name in self.answers.screens
            if not answered and sc.name not in ("run", "summary") and sc.satisfied():
                self.say(f"{sc.name}: as proposed")
                continue
            self.show(sc)
            if sc.name == "run":
                self.start_run()
                return
            if answered:
                self.say(f"{sc.name}: from the answers file")
                sc.answer(self.answers.screens[sc.name])
                return
            if sc.name == "summary" and self.answers is not None and self.headless:
                sc.answer({})
                return
            self.decisions += sc.name not in ("summary",)
            if self.headless:
                self.stopped = sc.name
                self.say(f"{sc.name}: the answers file has no answer here; a person is "
                         f"needed (nothing was wiped)")
                self.quit()
            return

    def back(self) -> None:
        if self.index <= 0 or self.current().name in ("run", "summary"):
            return
        self.index -= 1
        self.show(self.current())

    def show(self, sc: screens.Screen) -> None:
        sc.view = sc.make_view()
        if self.headless:
            return
        step = f"{self.index + 1}/{len(self.screens)}"
        self.frame = views.frame(sc.title, step, sc.view, sc.keys)
        if self.loop is not None:
            self.loop.widget = self.frame

    def quit(self) -> None:
        if self.loop is not None:
            raise urwid.ExitMainLoop()

    # -- the run ----------------------------------------------------------------------
    def start_run(self) -> None:
        rfd, wfd = os.pipe()
        env = dict(os.environ, AMDR_EVENTS=str(wfd), AMDR_PROGRESS_SECONDS="2",
                   AMDR_ASSIST_STATE=self.model.assist_state)
        keep = [wfd]
        if not self.headless:  # the engine's questions come here, the answers go back
            ask_r, self._replies = os.pipe()
            env["AMDR_REPLIES"] = str(ask_r)
            keep.append(ask_r)
        else:
            self.model.on_error = "skip" if self.model.on_error == "ask" else \
                self.model.on_error  # nobody to ask: a failed DLE is skipped, said so
        argv = self.model.recover_argv()
        self.say("$ amdr-recover " + " ".join(argv[3:]))
        self._child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, pass_fds=tuple(keep), env=env,
                                       start_new_session=True)
        for fd in keep:
            os.close(fd)
        self._events_fd = rfd
        if self.headless:
            self._pump_headless()
        else:
            self.loop.watch_file(rfd, self._on_events)
            self.loop.watch_file(self._child.stdout.fileno(), self._on_output)

    def _lines(self, fd, buf_name) -> list[str] | None:
        data = os.read(fd, 65536)
        if not data:
            return None
        buf = getattr(self, buf_name) + data
        *lines, rest = buf.split(b"\n")
        setattr(self, buf_name, rest)
        return [ln.decode(errors="replace") for ln in lines]

    def _on_events(self) -> None:
        lines = self._lines(self._events_fd, "_events_buf")
        if lines is None:
            self.loop.remove_watch_file(self._events_fd)
            os.close(self._events_fd)
            return
        view = self.current().view
        for ln in lines:
            ev = events_mod.parse(ln)
            if ev and ev["kind"] == "ask":
                self.ask(ev)
                continue
            if ev:
                self.timed(ev)
            if ev and hasattr(view, "event"):  # (the run screen; not once it ended)
                view.event(ev)

    def timed(self, ev: dict) -> None:
        """Each step's seconds, from its start and done events."""
        if ev.get("kind") == "step" and ev.get("step"):
            if ev.get("state") == "start":
                self.step_times[ev["step"]] = [ev.get("t") or 0, None]
            elif ev["step"] in self.step_times:
                self.step_times[ev["step"]][1] = ev.get("t") or 0

    ASKED = {"retry": "Retry (once what is named is fixed)",
             "skip": "Skip it and go on with the others",
             "loaded": "The volume is loaded: go on",
             "stop": "Stop the recovery"}

    def ask(self, ev: dict) -> None:
        """The engine asks (a DLE failed, a volume is wanted): a dialog over the
        run screen; the choice goes back to the engine, which waits for it."""
        if self._replies is None:  # the engine has ended: nobody waits for an answer
            return
        text = str(ev.get("text") or "")
        self.say(f"asked: {text}")
        under = self.loop.widget
        items = [(self.ASKED.get(c, c), c) for c in ev.get("choices") or []]
        items.append(("Open a shell (then choose here)", "shell"))

        def picked(choice):
            if choice == "shell":
                self.open_shell()
                self.dialog_view.walker.set_focus(0)  # back: the first choice (retry)
                return
            self.say(f"answered: {choice}")
            try:
                if self._replies is None:
                    raise OSError("it has ended")
                os.write(self._replies, (json.dumps({"id": ev.get("id"), "choice": choice})
                                         + "\n").encode())
            except OSError as e:
                self.say(f"the engine did not take the answer: {e}")
            self.loop.widget = under

        self.loop.widget, self.dialog_view = views.dialog(
            text.splitlines(), items, picked, under,
            title=f"a person must decide: question {ev.get('id')}")

    def open_shell(self) -> None:
        """The shell: tmux's shell window on the live console, else a shell here
        while the screens wait."""
        if os.environ.get("TMUX") and subprocess.run(
                ["tmux", "select-window", "-t", ":1"], capture_output=True).returncode == 0:
            self.say("shell: tmux window 1 (Ctrl-b 0 comes back)")
            return
        self.say("shell: `exit` comes back to the screens")
        self.loop.screen.stop()
        try:
            print("amanda-dr: a shell; `exit` comes back to the recovery's screens", flush=True)
            subprocess.run([os.environ.get("SHELL") or "/bin/bash"], check=False)
        finally:
            self.loop.screen.start()
            self.loop.screen.clear()

    def _on_output(self) -> None:
        lines = self._lines(self._child.stdout.fileno(), "_out_buf")
        if lines is None:
            self.loop.remove_watch_file(self._child.stdout.fileno())
            self._finished(self._child.wait())
            return
        view = self.current().view
        for ln in lines:
            self.model.say(ln)
            if hasattr(view, "line"):
                view.line(ln)

    def _pump_headless(self) -> None:
        import selectors
        sel = selectors.DefaultSelector()
        out = self._child.stdout
        sel.register(self._events_fd, selectors.EVENT_READ, "events")
        sel.register(out.fileno(), selectors.EVENT_READ, "out")
        last = 0.0
        while sel.get_map():
            for key, _ in sel.select():
                name = "_events_buf" if key.data == "events" else "_out_buf"
                lines = self._lines(key.fd, name)
                if lines is None:
                    sel.unregister(key.fd)
                    continue
                for ln in lines:
                    if key.data == "out":
                        self.model.say(ln)
                        print(f"  {ln}", flush=True)
                        continue
                    ev = events_mod.parse(ln)
                    if ev:
                        self.timed(ev)
                        self.current().view.event(ev)
                        if ev["kind"] != "progress" or time.monotonic() - last > 10:
                            last = time.monotonic()
                            print(f"tui: event {json.dumps(ev)}", flush=True)
        os.close(self._events_fd)
        self._finished(self._child.wait())

    def _finished(self, rc: int) -> None:
        self.result = rc
        if self._replies is not None:
            os.close(self._replies)
            self._replies = None
        self.say(f"run: amdr-recover recover exit {rc}")
        try:
            self.report = json.loads(Path(self.model.report_path()).read_text())
        except (OSError, ValueError):
            self.report = {}
        self.next_screen()

    def summary_lines(self) -> list[str]:
        out = [f"Host {self.model.host}: " + ("every DLE restored" if self.result == 0 else
                                              f"the recovery ended with exit {self.result}")]
        out.append(f"{'DLE':22s} {'levels':7s} {'files':>7s} {'MB':>8s} {'seconds':>8s} "
                   f"{'MB/s':>6s}")
        restored = self.report.get("restored") or []
        shown = restored if len(restored) <= 8 else restored[:7]
        for r in shown:
            mb = (r.get("bytes") or 0) / 1e6
            s = r.get("seconds") or 0
            files = "" if r.get("files") is None else str(r["files"])
            out.append(f"{r.get('disk', '?')[-22:]:22s} "
                       f"{','.join(map(str, r.get('levels', []))):7s} {files:>7s} {mb:8.1f} "
                       f"{s:8.1f} {(mb / s if s else 0):6.1f}")
        if len(shown) < len(restored):
            out.append(f"... and {len(restored) - len(shown)} more restored (the report below)")
        errors = self.report.get("errors") or []
        for e in errors[:4]:
            out.append(f"NOT RESTORED {e.get('message') if isinstance(e, dict) else e}"[:160])
        if len(errors) > 4:
            out.append(f"... and {len(errors) - 4} more not restored (the report below)")
        steps = [f"{k} {v[1] - v[0]:.0f} s" for k, v in self.step_times.items()
                 if v[1] is not None]
        if steps:
            out.append("steps: " + ", ".join(steps))
        try:
            fin = json.loads((Path(self.model.state_dir) / "finalize-report.json").read_text())
        except (OSError, ValueError):
            fin = None
        if fin and self.step_times.get("finalize"):
            changes = fin.get("changes") or []
            out.append(f"finalize changed {len(changes)} thing(s)"
                       + (": " + "; ".join(changes[:3]) if changes else "")
                       + (" ..." if len(changes) > 3 else ""))
            out += [f"finalize report: {p}" for p in fin.get("saved") or []]
        out.append(f"restore report: {self.model.report_path()}")
        return out

    def then(self, value: str) -> None:
        self.after = value
        self.say(f"summary: {value}")
        if value in ("reboot", "poweroff") and os.path.exists("/run/live/medium"):
            from ..cli import main as cli_main
            cli_main(["umount", "--target", self.model.target])
            subprocess.run(["systemctl", value], check=False)
        self.quit()

    # -- the terminal -----------------------------------------------------------------
    def unhandled(self, key) -> None:
        if key == "esc":
            self.back()
        elif key == "f10":
            if self._child is None or self._child.poll() is not None:
                raise urwid.ExitMainLoop()
        elif key == "f2":
            self.show_log()
        elif key == "f9":
            self.assist_menu()

    # -- remote assist (recovery/assist.py) ----------------------------------------------
    def assist_state(self):
        from .. import assist
        return assist.State(Path(self.model.assist_state))

    def assist_menu(self) -> None:
        """F9: call the office, let it type, drop it; the status line says the rest."""
        st = self.assist_state()
        on = st.file("authorized_keys").exists()
        under = self.loop.widget
        fp = st.config().get("host_key") if on else None
        lines = [st.refresh() if on else "Remote assist is off." + (
                     f" ({st.tunnel()})" if st.tunnel().startswith("refused") else ""),
                 *([f"this system's host key (read it out): {fp}"] if fp else []),
                 "The office sees this screen through an outbound connection to its",
                 "jump host; it watches until you let it type; you can drop it any time."]
        lan_on = st.file("lan").exists()
        items = ([("Let the office type", "approve"), ("Drop the office (end assist)", "end")]
                 if on or lan_on else [("Call the office", "call")])
        if os.path.exists("/run/live/medium"):
            items.append(("On this LAN: the password off", "lan-off") if lan_on else
                         ("On this LAN: let the office log in with a password", "lan"))
        items.append(("Back", "back"))

        def picked(what):
            self.loop.widget = under
            if what == "call":
                self.assist_call()
            elif what == "approve":
                from .. import assist
                done = assist.approve(st)
                self.say(f"assist: may type now: {', '.join(done) or 'nobody was waiting'}")
            elif what == "end":
                from .. import assist
                self.say(f"assist: ended: {assist.end(st)}")
            elif what in ("lan", "lan-off"):
                from .. import assist
                try:
                    shown = assist.lan(st, what == "lan")
                except AmdrError as e:
                    shown = [str(e)]
                self.say(f"assist: {shown[0]}")  # (the password: on the screen only)
                back = self.loop.widget
                info = views.InfoView(shown, lambda: setattr(self.loop, "widget", back),
                                      "Enter: back")
                self.loop.widget = views.frame("the office", "", info, "Enter: back")

        self.loop.widget, _ = views.dialog(lines, items, picked, under, title="the office")

    def assist_call(self) -> None:
        """The tunnel runs apart from the screens (it outlives a crash of them):
        amdr-assist.service on the live system, else its own process."""
        import shlex
        session = None
        if os.environ.get("TMUX"):
            r = subprocess.run(["tmux", "display-message", "-p", "#S"], capture_output=True,
                               text=True)
            session = r.stdout.strip() or None
        if session is None:
            self.say("assist: the office shares the screens through tmux; run the UI in "
                     "tmux (the live console does)")
            return
        st = self.assist_state()
        st.make()
        extra = shlex.split(self.model.assist_args or "")
        if "--settings" not in extra:
            extra += self.assist_settings(st)
        from ..site import DEFAULT
        if "--settings" not in extra and not DEFAULT.exists() and self.model.bundle is None:
            self.model.assist_later = True
            self.say("assist: the office's settings come with the bundle: the office is "
                     "called once it is open (host and passphrase)")
            return
        if os.path.exists("/run/live/medium"):  # the service: it outlives the screens
            from ..assist import call_on_live
            given = extra[extra.index("--settings") + 1] if "--settings" in extra else None
            r = call_on_live(given)
            self.say(f"assist: calling the office ({(r.stdout + r.stderr).strip() or 'started'})")
            return
        from .model import engine_argv
        argv = engine_argv() + ["assist", "call", "--state", str(st.path), "--session",
                                session] + extra
        log = open(st.file("call.log"), "ab")
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True)
        self.say("assist: calling the office (the status line says how it goes)")

    def assist_settings(self, st) -> list[str]:
        """The image's site settings are found by `assist call` itself; the
        bundle's (essentials.yaml assist:) are handed over in a file, once the
        bundle is open."""
        from ..assist import bundle_settings
        from ..site import DEFAULT
        if DEFAULT.exists():
            return []
        f = bundle_settings(getattr(self.model.bundle, "manifest", None) or {}, st)
        return ["--settings", str(f)] if f else []

    def show_log(self) -> None:
        back = self.loop.widget  # the screen as it was (a run's rows, a dialog)

        def restore():
            self.loop.widget = back

        log = views.InfoView(self.model.log[-300:] or ["(nothing yet)"], restore, "Enter: back")
        log.walker.set_focus(max(0, len(log.walker) - 1))
        self.loop.widget = views.frame("log", "", log, "Enter: back")

    def run(self) -> int:
        if self.answers is not None and self.answers.get("welcome", "assist") == "lan":
            from .. import assist
            try:
                self.say(assist.lan(self.assist_state(), True)[0])
            except AmdrError as e:
                self.say(f"assist lan: {e}")
        elif self.answers is not None and self.answers.get("welcome", "assist"):
            given = self.answers.get("welcome", "assist")
            if isinstance(given, str) and "--settings" not in self.model.assist_args:
                self.model.assist_args += f" --settings {given}"
            self.assist_call()
        if self.headless:
            self.model.find_bundles()
            self.next_screen()
        else:
            import contextlib
            import logging
            # what this process would print on stderr (notes, warnings) goes to
            # the log (F2), not across the screens
            sink = _LogWriter(self.model)
            handlers = [h for h in logging.root.handlers if isinstance(h, logging.StreamHandler)]
            old = [h.setStream(sink) for h in handlers]
            self.model.find_bundles()
            self.loop = urwid.MainLoop(urwid.SolidFill(" "), views.PALETTE,
                                       unhandled_input=self.unhandled, handle_mouse=False)
            self.loop.screen.set_terminal_properties(colors=1)
            self.loop.set_alarm_in(0, lambda *_: self.next_screen())
            try:
                with contextlib.redirect_stderr(sink):
                    self.loop.run()
            finally:
                for h, stream in zip(handlers, old):
                    h.setStream(stream)
                if self._child is not None and self._child.poll() is None:
                    os.killpg(self._child.pid, signal.SIGTERM)
        if self.stopped:
            return EXIT_REFUSED
        if self.result is None:
            return EXIT_REFUSED  # quit before the run: nothing was wiped
        return EXIT_OK if self.result == 0 else EXIT_PARTIAL if self.result == 1 else self.result


class _LogWriter:
    """A file-like sink whose lines go to the model's log."""

    def __init__(self, model):
        self.model, self.buf = model, ""

    def write(self, text: str) -> int:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for ln in lines:
            if ln.strip():
                self.model.say(ln)
        return len(text)

    def flush(self) -> None:
        pass


def main(args) -> int:
    from .. import answers as answers_mod
    a = answers_mod.load(args.answers) if args.answers else None
    m = Model(target=args.target or (a.get("run", "target") if a else None) or "/mnt/target")
    if args.store:
        m.store_dir = args.store
    if args.gnupghome:
        m.gnupghome = args.gnupghome
    if args.signer:
        m.signers = list(args.signer)
    if args.vtapes:
        m.vtapes = args.vtapes
    if args.media:
        m.media = list(args.media)
    if args.no_finalize:
        m.finalize = False
    m.assist_args = args.assist or ""
    if args.assist_state:
        m.assist_state = args.assist_state
    if a is not None:
        m.answers = a
        b = a.screens.get("bundles") or {}
        m.media += [x for x in b.get("media") or [] if x not in m.media]
        if a.get("unlock", "gnupghome"):
            m.gnupghome = a.get("unlock", "gnupghome")
        if a.get("unlock", "signers"):
            m.signers = list(a.get("unlock", "signers"))
        if a.get("plan", "vtapes"):
            m.vtapes = a.get("plan", "vtapes")
        for old, new in (a.get("disks", "map") or {}).items():
            m.maps[old] = new
        if a.get("run", "finalize") is False:
            m.finalize = False
        m.allow_partial = bool(a.get("run", "allow-partial"))
    headless = not (sys.stdin.isatty() and sys.stdout.isatty())
    app = App(m, a, headless=headless)
    try:
        rc = app.run()
    finally:
        from ..bundles import forget_home_copies
        forget_home_copies()  # the recovery key's copy, if the key came read-only
    if app.stopped:
        print(f"amdr-recover tui: stopped at the {app.stopped} screen: the answers file has "
              f"no answer there (nothing was wiped)", file=sys.stderr)
    print(f"amdr-recover tui: {app.decisions} decision(s) asked of a person", flush=True)
    return rc
