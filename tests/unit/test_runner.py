"""The command runner: real processes, no mocks."""

import logging
import os
import pwd

import pytest

from essentials.errors import CommandError
from essentials.runner import Cmd, Runner, Secret, Source, display


@pytest.fixture
def runner():
    return Runner()


@pytest.fixture
def cmdlog(caplog):
    caplog.set_level(logging.INFO, logger="commands")
    return caplog


def thread_rchar() -> int:
    """Bytes this thread has read. Not /proc/self/io: that adds reaped children's."""
    with open("/proc/thread-self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


# -- run -----------------------------------------------------------------------

def test_true(runner):
    res = runner.run(["true"])
    assert res.returncode == 0
    assert res.argv == ["true"]
    assert res.duration >= 0


def test_false_raises(runner):
    with pytest.raises(CommandError) as e:
        runner.run(["false"])
    assert e.value.returncode == 1
    assert e.value.argv_display == "false"
    assert e.value.exit_code == 3  # EXIT_FAILED, for cron mail


def test_false_unchecked(runner):
    assert runner.run(["false"], check=False).returncode == 1


def test_error_carries_exit_code_and_stderr_tail(runner):
    with pytest.raises(CommandError) as e:
        runner.run(["sh", "-c", "echo boom >&2; exit 3"], what="probing")
    err = e.value
    assert err.returncode == 3
    assert err.stderr_tail == "boom\n"
    assert err.argv_display == "sh -c 'echo boom >&2; exit 3'"
    assert str(err) == ("probing: command failed (exit 3): sh -c 'echo boom >&2; exit 3'"
                        "\n  stderr: boom")


def test_stderr_tail_is_the_end(runner):
    script = "i=0; while [ $i -lt 1000 ]; do echo line$i >&2; i=$((i+1)); done; exit 1"
    with pytest.raises(CommandError) as e:
        runner.run(["sh", "-c", script])
    tail = e.value.stderr_tail
    assert len(tail) == 2000
    assert tail.endswith("line999\n")
    assert "line0\n" not in tail


def test_output_input_and_cwd(runner, tmp_path):
    assert runner.run(["cat"], input=b"abc\x00def").stdout == b"abc\x00def"
    assert runner.output(["pwd"], cwd=tmp_path).strip() == str(tmp_path)
    env = {"PATH": os.environ["PATH"], "AMDR_T": "x y"}
    assert runner.output(["sh", "-c", 'printf %s "$AMDR_T"'], env=env) == "x y"


def test_arguments_are_not_shell_parsed(runner, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = runner.output(["echo", f"; rm {victim}", "$HOME", "*"])
    assert out == f"; rm {victim} $HOME *\n"
    assert victim.exists()


def test_non_string_arguments(runner, tmp_path):
    assert runner.output(["echo", 42, tmp_path]) == f"42 {tmp_path}\n"


def test_missing_executable(runner):
    with pytest.raises(CommandError) as e:
        runner.run(["/nonexistent/amdr-no-such-tool", "x"])
    assert e.value.returncode == 127
    assert "command not found" in str(e.value)


def test_executable_without_permission(runner, tmp_path):
    """A tool that is there but cannot run is a CommandError, not a traceback."""
    tool = tmp_path / "amdr-not-executable"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o644)
    with pytest.raises(CommandError) as e:
        runner.run([str(tool)])
    assert e.value.returncode == 126
    assert "cannot execute: permission denied" in str(e.value)
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["echo", "x"]), Cmd([str(tool)])])
    assert e.value.returncode == 126


def test_timeout(runner):
    with pytest.raises(CommandError) as e:
        runner.run(["sleep", "5"], timeout=0.2)
    assert e.value.returncode == -1
    assert "timed out after 0.2s" in str(e.value)


def test_command_logged_with_exit(runner, cmdlog):
    runner.run(["echo", "hello world"])
    msgs = [r.getMessage() for r in cmdlog.records if r.name == "commands"]
    assert msgs[0] == "run: echo 'hello world'"
    assert msgs[1].startswith("exit 0 in ") and msgs[1].endswith(": echo")


# -- secrets -------------------------------------------------------------------

def test_secret_is_redacted_in_log(runner, cmdlog):
    out = runner.output(["echo", "--passphrase", Secret("hunter2")])
    assert out == "--passphrase hunter2\n"  # the command itself gets the real value
    assert "run: echo --passphrase <redacted>" in cmdlog.text
    assert "hunter2" not in cmdlog.text


def test_secret_is_redacted_in_error(runner, cmdlog):
    with pytest.raises(CommandError) as e:
        runner.run(["sh", "-c", "exit 2", "sh", Secret("hunter2")])
    assert "hunter2" not in str(e.value)
    assert "<redacted>" in str(e.value)
    assert e.value.argv_display == "sh -c 'exit 2' sh <redacted>"
    assert "hunter2" not in cmdlog.text


def test_secret_repr_and_display():
    s = Secret("hunter2")
    assert s == "hunter2"
    assert repr(s) == "'<redacted>'"
    assert repr(["gpg", s]) == "['gpg', '<redacted>']"
    assert display(["gpg", "--passphrase", s, "a b", "", "it's"]) == (
        "gpg --passphrase <redacted> 'a b' '' 'it'\\''s'")


def test_secret_in_pipeline(runner, cmdlog, tmp_path):
    out = tmp_path / "out"
    runner.pipeline([Cmd(["echo", Secret("hunter2")]), Cmd(["sh", "-c", f"cat > {out}"])])
    assert out.read_text() == "hunter2\n"
    assert "<redacted>" in cmdlog.text and "hunter2" not in cmdlog.text
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["true"]), Cmd(["sh", "-c", "exit 1", "sh", Secret("hunter2")])])
    assert "hunter2" not in str(e.value)


# -- dry run -------------------------------------------------------------------

def test_dry_run_records_and_runs_nothing(tmp_path, cmdlog):
    target = tmp_path / "FILE"
    r = Runner(dry_run=True)
    res = r.run(["touch", target], user="backup")
    assert not target.exists()
    assert res.returncode == 0 and res.stdout == b""
    [rec] = r.recorded
    assert rec.kind == "run"
    assert rec.commands[0].argv == ["touch", str(target)]
    assert rec.commands[0].user == "backup"
    assert f"dry-run: touch {target} (as backup)" in cmdlog.text


def test_dry_run_pipeline(tmp_path):
    target = tmp_path / "FILE"
    r = Runner(dry_run=True)
    res = r.pipeline([Cmd(["echo", "x"]), Cmd(["tee", str(target)], user="backup")])
    assert not target.exists()
    assert [s.returncode for s in res.stages] == [0, 0]
    [rec] = r.recorded
    assert rec.kind == "pipeline"
    assert [c.argv for c in rec.commands] == [["echo", "x"], ["tee", str(target)]]
    assert rec.commands[1].user == "backup"


def test_pipeline_accepts_path_and_int_arguments(tmp_path):
    target = tmp_path / "FILE"
    r = Runner(dry_run=True)
    r.pipeline([Cmd(["head", "-c", 10, "/dev/zero"]), Cmd(["tee", target])])
    assert len(r.recorded) == 1
    Runner().pipeline([Cmd(["head", "-c", 10, "/dev/zero"]), Cmd(["tee", target])])
    assert target.read_bytes() == bytes(10)


def test_dry_run_canned_responses():
    r = Runner(dry_run=True, responses={"lsblk": b'{"blockdevices": []}',
                                        "amadmin probe find": "no dump"})
    assert r.run(["lsblk", "--json"]).stdout == b'{"blockdevices": []}'
    assert r.output(["amadmin", "probe", "find"]) == "no dump"
    assert r.run(["amadmin", "probe", "info"]).stdout == b""
    assert len(r.recorded) == 3


# -- pipelines -----------------------------------------------------------------

def test_pipeline_counts_bytes_and_data_bypasses_python(runner, tmp_path):
    out = tmp_path / "count"
    before = thread_rchar()
    res = runner.pipeline([Cmd(["head", "-c", "1000000", "/dev/zero"]),
                           Cmd(["sh", "-c", f"wc -c > {out}"])])
    read_by_python = thread_rchar() - before
    assert [s.returncode for s in res.stages] == [0, 0]
    assert res.stages[0].write_bytes == 1000000
    assert res.bytes_through == 1000000
    assert res.stages[1].read_bytes >= 1000000
    assert out.read_text().strip() == "1000000"
    # Python itself read far less than the stream (only /proc and stderr files)
    assert read_by_python < 100000


def test_pipeline_progress(runner):
    seen = []
    runner.pipeline([Cmd(["sh", "-c", "head -c 300000 /dev/zero; sleep 0.5"]),
                     Cmd(["cat"])], progress=seen.append, interval=0.1)
    assert seen, "progress was never called"
    assert max(seen) >= 300000
    assert seen == sorted(seen)


def test_pipeline_three_stages(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.pipeline([Cmd(["printf", "b\\na\\nc\\n"]), Cmd(["sort"]),
                           Cmd(["sh", "-c", f"cat > {out}"])])
    assert len(res.stages) == 3
    assert out.read_text() == "a\nb\nc\n"


def test_pipeline_failing_first_stage(runner):
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["sh", "-c", "echo bad >&2; exit 4"]), Cmd(["cat"])],
                        what="restore")
    assert e.value.returncode == 4
    assert e.value.argv_display == "sh -c 'echo bad >&2; exit 4'"
    assert e.value.stderr_tail == "bad\n"
    assert str(e.value).startswith("restore: command failed (exit 4)")


def test_pipeline_failing_last_stage_that_read_everything(runner):
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["echo", "data"]),
                         Cmd(["sh", "-c", "cat >/dev/null; echo tar-failed >&2; exit 2"])])
    assert e.value.returncode == 2
    assert e.value.argv_display.startswith("sh -c 'cat >/dev/null;")
    assert "tar-failed" in e.value.stderr_tail


def test_pipeline_blames_the_failing_stage_not_its_sigpipe_victim(runner):
    # amrestore | tar where tar dies (disk full): amrestore then gets SIGPIPE
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["head", "-c", "10000000", "/dev/zero"]),
                         Cmd(["sh", "-c", "echo tar-failed >&2; exit 5"])])
    assert e.value.returncode == 5
    assert "tar-failed" in e.value.stderr_tail


def test_a_reader_that_ends_well_before_the_padding_is_no_failure(runner):
    # restore -r stops at the dump's end record; the volume's file goes on to its
    # 32 KiB boundary: dd's SIGPIPE then (a race the machine's load decides) is no
    # failure, when all but the padding was written
    size = 100 * 32768
    whole = Source([Cmd(["dd", "if=/dev/zero", "bs=32k", "count=100", "status=none"])],
                   expect=size)
    for _ in range(5):
        r = runner.stream([whole], [Cmd(["sh", "-c", f"head -c {size - 98304} >/dev/null"])])
        assert r.sources[0][0].returncode == -13  # the padding unwritten: dd lost its reader
        assert [s.returncode for s in r.sink] == [0]
    # a reader that ended well long before the end: a truncation, not padding
    with pytest.raises(CommandError):
        runner.stream([Source([Cmd(["dd", "if=/dev/zero", "bs=1M", "count=20",
                                    "status=none"])], expect=20 << 20)],
                      [Cmd(["head", "-c", "100"])])
    # nothing known of the source's size: as before, the SIGPIPE fails it
    with pytest.raises(CommandError):
        runner.stream([Source([Cmd(["dd", "if=/dev/zero", "bs=1M", "count=20",
                                    "status=none"])])], [Cmd(["head", "-c", "100"])])
    # a reader that failed is still the news
    with pytest.raises(CommandError) as e:
        runner.stream([Source([Cmd(["head", "-c", "8000000", "/dev/zero"])])],
                      [Cmd(["sh", "-c", "head -c 100 >/dev/null; exit 4"])])
    assert e.value.returncode == 4


def test_pipeline_unchecked_reports_every_status(runner):
    res = runner.pipeline([Cmd(["sh", "-c", "exit 3"]), Cmd(["sh", "-c", "cat; exit 4"])],
                          check=False)
    assert [s.returncode for s in res.stages] == [3, 4]


def test_pipeline_missing_executable(runner):
    with pytest.raises(CommandError) as e:
        runner.pipeline([Cmd(["echo", "x"]), Cmd(["/nonexistent/amdr-no-such-tool"])])
    assert e.value.returncode == 127
    assert "amdr-no-such-tool" in str(e.value)


# -- running as another user -----------------------------------------------------

def test_run_as_nobody(runner):
    assert os.geteuid() == 0, "this test needs root: the runner drops privileges"
    nobody = pwd.getpwnam("nobody")
    res = runner.run(["id", "-un"], user="nobody")
    assert res.text.strip() == "nobody"
    assert runner.output(["id", "-u"], user="nobody").strip() == str(nobody.pw_uid)
    assert runner.output(["id", "-g"], user="nobody").strip() == str(nobody.pw_gid)
    home = runner.output(["sh", "-c", 'printf "%s %s" "$HOME" "$USER"'], user="nobody")
    assert home == f"{nobody.pw_dir} nobody"


def test_pipeline_stage_as_nobody(runner, tmp_path):
    assert os.geteuid() == 0, "this test needs root: the runner drops privileges"
    out = tmp_path / "who"
    runner.pipeline([Cmd(["id", "-un"], user="nobody"), Cmd(["sh", "-c", f"cat > {out}"])])
    assert out.read_text().strip() == "nobody"


def test_unknown_user(runner):
    with pytest.raises(KeyError):
        runner.run(["true"], user="amdr-no-such-user")
