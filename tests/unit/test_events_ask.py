"""The engine's questions (recovery/events.ask): put to a renderer through
AMDR_EVENTS / AMDR_REPLIES, or answered by the caller's default when nobody
can be asked.  Each case in a fresh interpreter: the channels are read from
the environment once per process."""

import json
import os
import subprocess
import sys
import textwrap

ASK = textwrap.dedent("""
    from recovery import events
    got = events.ask("failed", "web1:/srv was not restored", ["retry", "skip", "stop"],
                     default="skip")
    print("GOT", got)
""")


def run(env_extra, pass_fds=(), stdin=subprocess.DEVNULL):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMDR_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", ASK], env=env, pass_fds=pass_fds,
                          stdin=stdin, capture_output=True, text=True, timeout=30)


def test_nobody_to_ask_takes_the_default():
    p = run({})
    assert p.stdout.strip().endswith("GOT skip"), p.stdout + p.stderr


def test_a_renderer_gets_the_question_and_its_reply_is_the_answer():
    ev_r, ev_w = os.pipe()
    rp_r, rp_w = os.pipe()
    os.write(rp_w, b'{"id": 1, "choice": "bogus"}\n{"id": 7, "choice": "stop"}\n'
                   b'{"id": 1, "choice": "retry"}\n')
    os.close(rp_w)
    p = run({"AMDR_EVENTS": str(ev_w), "AMDR_REPLIES": str(rp_r)}, pass_fds=(ev_w, rp_r))
    os.close(ev_w)
    os.close(rp_r)
    with os.fdopen(ev_r) as f:
        evs = [json.loads(ln) for ln in f]
    # a choice not offered and a reply to another question are passed over
    assert p.stdout.strip().endswith("GOT retry"), p.stdout + p.stderr
    ask = next(e for e in evs if e["kind"] == "ask")
    assert ask["id"] == 1 and ask["choices"] == ["retry", "skip", "stop"]
    assert ask["text"] == "web1:/srv was not restored"
    assert {"kind": "answered", "id": 1, "choice": "retry"}.items() <= \
        next(e for e in evs if e["kind"] == "answered").items()


def test_a_renderer_that_went_away_leaves_the_default():
    ev_r, ev_w = os.pipe()
    rp_r, rp_w = os.pipe()
    os.close(rp_w)  # nothing will ever answer
    p = run({"AMDR_EVENTS": str(ev_w), "AMDR_REPLIES": str(rp_r)}, pass_fds=(ev_w, rp_r))
    os.close(ev_w)
    os.close(rp_r)
    os.close(ev_r)
    assert p.stdout.strip().endswith("GOT skip"), p.stdout + p.stderr
