"""Parallel restore streams: who waits for whom, and never two on one volume (pure)."""

import threading
import time
from types import SimpleNamespace

import pytest

from recovery.catalog.chains import Chain
from recovery.catalog.model import Dump, Part
from recovery.restore import streams


def step(directory, *labels, disk=None):
    dumps = [Dump("h", disk or directory, f"2026010{n}000000", n, [Part(lab, 1, 1)], 1)
             for n, lab in enumerate(labels)]
    return SimpleNamespace(directory=directory, disk=disk or directory,
                           chain=Chain("h", disk or directory, dumps, "GNUTAR"))


def test_parents_hold_their_children():
    steps = [step("/t", "V1"), step("/t/srv", "V2"), step("/t/srv/x", "V3"),
             step("/t/srvx", "V4"), step("/t/home", "V5")]
    assert streams.waits_for(steps) == [set(), {0}, {0, 1}, {0}, {0}]
    assert streams.inside("/t/srv", "/") and not streams.inside("/t", "/t")


class Recorder:
    def __init__(self, seconds=0.2, fail=()):
        self.seconds, self.fail = seconds, set(fail)
        self.events, self.lock = [], threading.Lock()
        self.active, self.peak = set(), 0

    def __call__(self, st):
        with self.lock:
            self.events.append(("start", st.directory))
            self.active.add(st.directory)
            self.peak = max(self.peak, len(self.active))
        time.sleep(self.seconds)
        with self.lock:
            self.active.discard(st.directory)
            self.events.append(("end", st.directory))
        if st.directory in self.fail:
            raise RuntimeError(f"{st.directory} failed")
        return st.directory

    def order(self, what):
        return [d for e, d in self.events if e == what]


def test_siblings_run_together_after_their_parent():
    steps = [step("/t", "V1"), step("/t/srv", "V2"), step("/t/home", "V3")]
    rec = Recorder()
    t0 = time.monotonic()
    out = streams.run(steps, 2, rec)
    took = time.monotonic() - t0
    assert [o.result for o in out] == ["/t", "/t/srv", "/t/home"]
    assert rec.events[:2] == [("start", "/t"), ("end", "/t")]  # the parent alone first
    assert rec.peak == 2 and took < 0.2 * 3  # then the two children at once


def test_one_volume_is_never_read_twice_at_once():
    steps = [step("/t/a", "V1", "V2"), step("/t/b", "V2"), step("/t/c", "V3")]
    rec = Recorder()
    streams.run(steps, 3, rec)
    # b shares V2 with a: it starts only after a ended; c runs beside a
    assert rec.events.index(("start", "/t/b")) > rec.events.index(("end", "/t/a"))
    assert rec.events.index(("start", "/t/c")) < rec.events.index(("end", "/t/a"))


def test_a_failure_is_recorded_and_the_others_go_on():
    steps = [step("/t", "V1"), step("/t/srv", "V2"), step("/t/home", "V3")]
    seen = []
    out = streams.run(steps, 2, Recorder(0.05, fail={"/t"}), on_error=lambda s, e: seen.append(
        s.directory))
    assert [type(o.error).__name__ if o.error else o.result for o in out] == [
        "RuntimeError", "/t/srv", "/t/home"]
    assert seen == ["/t"]


def test_one_job_is_the_plain_order():
    steps = [step("/t/b", "V2"), step("/t", "V1"), step("/t/a", "V3")]
    rec = Recorder(0.01)
    streams.run(steps, 1, rec)
    # /t/b is listed first but waits for /t, which holds it
    assert rec.order("start") == ["/t", "/t/b", "/t/a"] and rec.peak == 1


def test_an_interrupt_ends_the_run_after_the_running_streams():
    steps = [step("/t/a", "V1"), step("/t/b", "V2"), step("/t/c", "V3")]

    def one(st):
        if st.directory == "/t/a":
            raise KeyboardInterrupt
        time.sleep(0.05)
        return st.directory
    with pytest.raises(KeyboardInterrupt):
        streams.run(steps, 2, one)


def test_once_stopped_nothing_else_starts():
    """The person chose stop: the streams running end, no other begins, and
    the ones never started have no outcome (the caller names them)."""
    steps = [step("/t", "V1"), step("/t/a", "V2"), step("/t/b", "V3"), step("/t/c", "V4")]
    stop = threading.Event()
    started = []

    def one(st):
        started.append(st.directory)
        if st.directory == "/t":
            stop.set()
            raise RuntimeError("failed, and the person said stop")
        return st.directory

    out = streams.run(steps, 2, one, should_stop=stop.is_set)
    assert started == ["/t"]
    assert [o.step.directory for o in out] == ["/t"] and out[0].error is not None
