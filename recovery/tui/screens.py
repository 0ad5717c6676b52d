"""The screens' controllers, in their order (subiquity's model: a view only
calls its controller; controllers call the model, which calls the engine).

Each controller has a name (the answers file's key), makes its view, takes
an answer through that view (the same method a key press ends in), and may
be `satisfied` by its defaults: then the flow passes it without asking, so a
person with the bundle on a medium and matching disks decides three things
only: the host, the passphrase, the host's name to confirm the wipe.  A
passed screen is one key away (Esc goes back through them).
"""

from __future__ import annotations

from pathlib import Path

from essentials.errors import AmdrError

from . import views


class Screen:
    name = ""
    title = ""
    keys = "Enter: choose  Esc: back  F2: log  F9: office  Ctrl-b 1: shell  F10: quit"

    def __init__(self, app):
        self.app = app
        self.model = app.model
        self.view = None

    def satisfied(self) -> bool:
        """The defaults are right and shown elsewhere: no need to stop here."""
        return False

    def make_view(self):
        raise NotImplementedError

    def answer(self, value) -> None:
        raise NotImplementedError

    def next(self) -> None:
        self.app.next_screen()

    def fail(self, text: str) -> None:
        self.app.say(f"{self.name}: {text}")
        if self.view is not None and hasattr(self.view, "say"):
            self.view.say(text)


class Welcome(Screen):
    name, title = "welcome", "what is here"

    def satisfied(self) -> bool:
        return self.app.doctor_ok

    def make_view(self):
        from ..live import machine_facts
        lines = [self.app.doctor_line, ""] + machine_facts(self.model.media) + [
            f"bundles: {len(self.model.entries)} host(s) found"]
        items = [("Go on", "go"), ("Network: DHCP", "dhcp"),
                 ("Network: the host's own address (from its bundle)", "original"),
                 ("Network: none", "none")]
        return views.ChoiceView(lines, items, self.picked)

    def picked(self, value) -> None:
        if value != "go":
            self.app.set_network(value)
        self.next()

    def answer(self, value) -> None:
        net = (value or {}).get("network", "go")
        if net.startswith("static:"):  # typed in the file: no item stands for it
            self.picked(net)
        else:
            self.view.choose(net)


class Bundles(Screen):
    name, title = "bundles", "bundles found"

    def satisfied(self) -> bool:
        return bool(self.model.entries)

    def make_view(self):
        from .. import store
        m = self.model
        lines = store.table(m.entries) if m.entries else [
            f"No bundle found.  Looked in: {', '.join(m.media) or 'no medium'}"
            + (f"; mailboxes {', '.join(m.mailboxes)}" if m.mailboxes else "")
            + (f"; sftp {m.sftp['host']}" if m.sftp else "") + ".",
            "Attach the medium with the bundles (a USB stick, a disk labelled AMDR)",
            "and type the directory it is mounted on, or an mbox file:"]
        lines += [f"problem: {p}" for p in m.problems]
        return views.AskView(lines, "source: ", self.entered)

    def entered(self, text: str) -> None:
        import os
        text = text.strip()
        if text:
            if os.path.isdir(text) and not os.path.isdir(os.path.join(text, "cur")):
                self.model.media.append(text)
            else:
                self.model.mailboxes.append(text)
            self.model.find_bundles()
        if not self.model.entries:
            self.fail(f"still no bundle (looked in {', '.join(self.model.media)})")
            return
        self.next()

    def answer(self, value) -> None:
        value = value or {}
        self.model.media += value.get("media") or []
        self.model.mailboxes += value.get("mailbox") or []
        if value.get("sftp"):
            self.model.sftp = value["sftp"]
        self.model.find_bundles()
        self.view.enter("")


class Host(Screen):
    name, title = "host", "which host"

    def make_view(self):
        m = self.model
        items = [(f"{e.host:20s} {e.when:%Y-%m-%d %H:%M}  {e.age():>8s}  {e.source[:26]}",
                  e.host) for e in m.entries]
        return views.ChoiceView(["Pick the host to recover (its newest bundle):",
                                 f"{'host':20s} {'bundle (UTC)':17s} {'age':>8s}  from"],
                                items, self.picked)

    def picked(self, host) -> None:
        try:
            self.model.pick(host)
        except AmdrError as e:
            self.fail(str(e))
            return
        self.app.say(f"host: {host}")
        self.next()

    def answer(self, value) -> None:
        if isinstance(value, dict) and value.get("bundle") and not value.get("name"):
            from .. import store
            parsed = store.sealed.parse_name(Path(value["bundle"]).name)
            if not parsed:
                self.fail(f"host.bundle {value['bundle']}: not a bundle's name "
                          f"(HOST-YYYYMMDDTHHMMSSZ.amdr.gpg)")
                self.app.stopped = self.name
                self.app.quit()
                return
            self.model.entries.append(store.Entry(Path(value["bundle"]), parsed[0], parsed[1],
                                                  "answers file"))
            value = parsed[0]
        name = value.get("name") if isinstance(value, dict) else value
        self.view.choose(name)


class Unlock(Screen):
    name, title = "unlock", "the recovery key"
    tried_without = False

    def satisfied(self) -> bool:
        # a recovery key without a passphrase needs nothing from anyone
        if not self.tried_without:
            self.tried_without = True
            try:
                self.model.unlock(None)
                return True
            except AmdrError as e:
                self.first_error = str(e)
        return False

    def make_view(self):
        e = self.model.entry
        return views.AskView([f"{e.path.name} is sealed to the site's recovery key.",
                              "Type the recovery key's passphrase (it is not shown):"],
                             "passphrase: ", self.entered, mask="*")

    def entered(self, text: str) -> None:
        try:
            self.model.unlock(text)
        except AmdrError as e:
            msg = str(e)
            if "passphrase" in msg.lower():
                self.fail("wrong passphrase: type it again")
            else:
                self.fail(msg)
            return
        self.next()

    def answer(self, value) -> None:
        value = value or {}
        if value.get("gnupghome"):
            self.model.gnupghome = value["gnupghome"]
        if value.get("signers"):
            self.model.signers = list(value["signers"])
        if value.get("passphrase-file"):
            from essentials.config import read_secret_file
            self.view.enter(read_secret_file(value["passphrase-file"], "passphrase"))
        elif self.satisfied_now():
            self.next()
        else:
            self.fail("the answers give no passphrase-file and the key needs one")

    def satisfied_now(self) -> bool:
        self.tried_without = False
        return self.satisfied()


class Disks(Screen):
    name, title = "disks", "original disks and the disks here"

    def satisfied(self) -> bool:
        try:
            plan = self.model.make_plan()
        except AmdrError as e:
            self.error = str(e)
            return False
        self.error = None
        return not plan.get("refused")

    def make_view(self):
        p = self.model.plan or {}
        lines = ["Original disk -> disk here (and why):"]
        from ..disks.mapping import human
        for m in p.get("mapping") or []:
            lines.append(f"  {m.get('original')} ({human(int(m.get('size') or 0))}) -> "
                         f"{m.get('present')}  {m.get('reason') or ''}")
        for r in p.get("refused") or []:
            lines.append(f"REFUSED: {r}")
        if getattr(self, "error", None):
            lines.append(f"problem: {self.error}")
        lines += ["", "To map differently, type ORIGINAL=HERE (e.g. /dev/sda=/dev/vdb),",
                  "or press Enter to keep this:"]
        return views.AskView(lines, "map: ", self.entered)

    def entered(self, text: str) -> None:
        text = text.strip()
        if text:
            old, sep, new = text.partition("=")
            if not sep:
                self.fail("expected ORIGINAL=HERE")
                return
            self.model.maps[old.strip()] = new.strip()
        if not self.satisfied():
            self.fail(self.error or "the plan is refused (see above)")
            return
        self.next()

    def answer(self, value) -> None:
        for old, new in ((value or {}).get("map") or {}).items():
            self.model.maps[old] = new
        self.view.enter("")


class Plan(Screen):
    name, title = "plan", "what will be done"

    def satisfied(self) -> bool:
        p = self.model.plan or {}
        return bool(p.get("restores")) and not p.get("errors")

    def make_view(self):
        p = self.model.plan or {}
        if p.get("errors"):
            lines = ["These DLEs cannot be restored (checked before any disk is touched):"]
            lines += [f"  {e.get('message')}" for e in p["errors"]]
            lines += ["", f"{len(p.get('restores') or [])} other DLE(s) can be restored."]
            items = [("Skip them: restore the others (their filesystems are made, empty)",
                      "skip"), ("Stop here: nothing is touched", "stop")]
            return views.ChoiceView(lines, items, self.decided)
        return views.InfoView(self.lines(), self.next,
                              "Enter: go on to the confirmation   Esc: back")

    def decided(self, value) -> None:
        if value == "skip":
            self.model.allow_partial = True
            self.app.say("plan: the DLEs that cannot be restored are skipped")
            self.next()
        else:
            self.app.say("plan: stopped before anything was touched")
            self.app.quit()

    def lines(self) -> list[str]:
        p = self.model.plan or {}
        out = ["Disks:"] + [f"  {d.get('id')}: {d.get('does')}" for d in p.get("disks") or []]
        out.append("Restores (level: volume, file):")
        for r in p.get("restores") or []:
            chain = "; ".join(f"L{d.get('level')}: {d.get('label')} {d.get('filenum')}"
                              for d in r.get("dumps") or [])
            out.append(f"  {r.get('disk')} -> {r.get('directory')}: {chain}")
        if p.get("estimate"):
            from ..cli import estimate_text
            out.append(estimate_text(p["estimate"]))
        return out

    def answer(self, value) -> None:
        value = value or {}
        if value.get("vtapes"):
            self.model.vtapes = value["vtapes"]
            self.model.make_plan()
        if (self.model.plan or {}).get("errors") and not self.model.allow_partial:
            self.app.say("plan: some DLEs cannot be restored and the answers do not allow "
                         "a partial recovery (run: allow-partial: true)")
            self.app.stopped = self.name
            self.app.quit()
            return
        self.next()


class Confirm(Screen):
    name, title = "confirm", "wipe and recover"

    def make_view(self):
        m = self.model
        p = m.plan or {}
        lines = [f"Host {m.host}: these disks will be WIPED and recreated:"]
        lines += p.get("wipe") or [f"  {d.get('present')}  becomes {d.get('original')}"
                                   for d in p.get("mapping") or []]
        n = len(p.get("restores") or [])
        size = sum(r.get("bytes") or 0 for r in p.get("restores") or [])
        secs = (p.get("estimate") or {}).get("seconds")
        about = "" if secs is None else f", about {secs / 60:.0f} min" if secs >= 120 \
            else f", about {max(1, secs):.0f} s"
        lines.append(f"then {n} DLE(s) restored ({size / 1e6:.0f} MB on the volumes{about})"
                     + (", and the system made bootable here." if m.finalize else
                        " (files only: not made bootable)."))
        return views.AskView(lines + ["", f"Type the host name ({m.host}) to go ahead:"],
                             "host name: ", self.entered)

    def entered(self, text: str) -> None:
        if text.strip() != self.model.host:
            self.app.say(f"confirm: {text.strip()!r} is not {self.model.host}: nothing touched")
            self.fail(f"'{text.strip()}' is not {self.model.host}: nothing was touched; "
                      f"type {self.model.host} to go ahead")
            return
        self.app.say(f"confirm: {self.model.host}")
        self.next()

    def answer(self, value) -> None:
        self.view.enter(str(value))


class Run(Screen):
    name, title = "run", "recovering"
    keys = "F2: log  F9: office  Ctrl-b 1: shell  (stopping: Ctrl-c in the shell window)"

    def make_view(self):
        p = self.model.plan or {}
        dles = [f"{r.get('host')}:{r.get('disk')}" for r in p.get("restores") or []]
        total = sum((r.get("bytes") or 0) for r in p.get("restores") or []) or None
        return views.RunView(self.model.host, dles, total)

    def answer(self, value) -> None:
        pass  # nothing to answer: the run starts when the screen shows


class Summary(Screen):
    name, title = "summary", "done"

    def make_view(self):
        return views.ChoiceView(self.app.summary_lines(), [
            ("Stay here (the restored system stays mounted)", "wait"),
            ("Reboot into the restored system", "reboot"),
            ("Power off", "poweroff"), ("Quit to the shell", "shell")], self.app.then)

    def answer(self, value) -> None:
        value = value or {}
        key = "then" if self.app.result == 0 else "on-failure"
        self.view.choose(value.get(key, "wait"))


ORDER = [Welcome, Bundles, Host, Unlock, Disks, Plan, Confirm, Run, Summary]
