"""The text UI's views (recovery/tui/views.py) with urwid's own means: keys
pressed into the widget, the canvas read back at 80x24, monochrome."""

import urwid

from recovery.tui import views

SIZE = (80, 24)


def test_a_choice_is_made_by_keys_and_by_an_answer():
    got = []
    v = views.ChoiceView(["Pick the host:"], [("web1", "web1"), ("db1", "db1")], got.append)
    f = views.frame("which host", "3/9", v, "Enter: choose")
    text = views.text_of(f, SIZE)
    assert len(text.splitlines()) == 24 and all(len(ln) <= 80 for ln in text.splitlines())
    assert "amanda-dr recovery: which host" in text and "web1" in text and "db1" in text
    f.keypress(SIZE, "down")
    f.keypress(SIZE, "enter")
    assert got == ["db1"]
    v.choose("web1")  # what an answers file does: the same callback
    assert got == ["db1", "web1"]


def test_a_passphrase_is_typed_masked_and_a_mistake_said():
    got = []
    v = views.AskView(["Type the passphrase:"], "passphrase: ", got.append, mask="*")
    for ch in "s3cret":
        v.keypress(SIZE, ch)
    text = views.text_of(v, SIZE)
    assert "passphrase: ******" in text and "s3cret" not in text
    v.keypress(SIZE, "enter")
    assert got == ["s3cret"]
    v.say("wrong passphrase: type it again")
    text = views.text_of(v, SIZE)
    assert "wrong passphrase: type it again" in text and "******" not in text


def test_the_run_view_draws_progress_bars_and_etas_from_events():
    v = views.RunView("web1", ["web1:/", "web1:/srv"], total=300_000_000)
    v.event({"kind": "step", "step": "restore", "state": "start"})
    v.event({"kind": "dle", "dle": "web1:/", "state": "restoring"})
    v.event({"kind": "progress", "dle": "web1:/", "level": 0, "image": 1, "images": 2,
             "done": 50_000_000, "total": 200_000_000, "rate": 10_000_000, "eta": 15.0})
    v.line("restoring web1:/ levels [0, 1] into /mnt/target")
    text = views.text_of(v, SIZE)
    row = next(ln for ln in text.splitlines() if ln.startswith("web1:/ "))
    assert "L0 1/2" in row and "[###.........]" in row and "50/200 MB" in row
    assert "10.0 MB/s" in row and "00:15" in row
    assert "restore: start" in text and "restoring web1:/ levels" in text
    overall = next(ln for ln in text.splitlines() if ln.startswith("all "))
    assert " 17%" in overall and "ETA 00:25" in overall
    v.event({"kind": "dle", "dle": "web1:/", "state": "done"})
    row = next(ln for ln in views.text_of(v, SIZE).splitlines() if ln.startswith("web1:/ "))
    assert "[############]" in row and row.rstrip().endswith("done")
    waiting = next(ln for ln in views.text_of(v, SIZE).splitlines()
                   if ln.startswith("web1:/srv"))
    assert waiting.rstrip().endswith("waiting")


def test_bars_and_clocks():
    assert views.bar(0.5, 10) == "[#####.....]" and views.bar(2, 4) == "[####]"
    assert views.seconds(None) == "--:--" and views.seconds(75) == "01:15"
    assert views.seconds(3700) == "1:01:40"


def test_monochrome_palette():
    # every attribute has a monochrome form (the serial console has no colour)
    assert all(len(p) == 4 and p[3] in ("bold", "standout", "") for p in views.PALETTE)
    assert urwid.AttrSpec("standout", "", colors=1)


def test_a_question_is_a_dialog_over_the_screen_and_fits_80x24():
    got = []
    under = views.frame("recovering", "8/9", views.InfoView(["the run's rows"]), "F2: log")
    long = ["web1:/srv was not restored:", "restore web1:/srv level 1: command failed"] + \
        [f"  stderr: line {i} of a long complaint" for i in range(40)]
    items = [("Retry", "retry"), ("Skip it", "skip"), ("Stop", "stop"), ("Shell", "shell")]
    d, view = views.dialog(long, items, got.append, under, title="question 1")
    text = views.text_of(d, SIZE)
    lines = text.splitlines()
    assert len(lines) == 24 and all(len(ln) <= 80 for ln in lines)
    # the first line and the last ones, every choice, the title
    assert "web1:/srv was not restored" in text and "line 39 of" in text
    assert "line 0 of" not in text and "the whole message: F2" in text
    assert all(label in text for label, _ in items) and "question 1" in text
    d.keypress(SIZE, "down")
    d.keypress(SIZE, "enter")
    assert got == ["skip"]
    view.choose("retry")  # an answer takes the same path
    assert got == ["skip", "retry"]
