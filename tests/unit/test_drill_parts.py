"""The drill's pure parts (recovery/drill.py): the restored system's report
read from a console, judged against what the bundle says the host was; the
answers the drill writes are a valid answers file; the reports render."""

from pathlib import Path

from recovery import answers, drill

CONSOLE = """\
[  OK  ] Reached target multi-user.target - Multi-User System.
AMDR-BOOT-OK host=drill-a root=/dev/vda2
\x1b[0mAMDR-DRILL-BEGIN host=drill-a multiuser=20.5 uptime=31.52
AMDR-DRILL mount / /dev/vda2 ext4
AMDR-DRILL mount /srv /dev/vda3 xfs
AMDR-DRILL swap /dev/vda4
AMDR-DRILL addr ens3 10.0.2.15/24 52:54:00:d1:00:0a
AMDR-DRILL state degraded failed=foo.service,
AMDR-DRILL-END
"""

M = drill.Machine("drill-a", "bios", [(3 << 30, "drill-a-0")], "52:54:00:d1:00:0a",
                  ["/", "/srv"], True, ["10.0.2.15/24"])


def test_the_report_is_read_from_the_console():
    b = drill.parse_check(CONSOLE)
    assert b["host"] == "drill-a" and b["uptime"] == 31.52 and b["complete"]
    assert b["multiuser"] == 20.5
    assert [m["target"] for m in b["mounts"]] == ["/", "/srv"]
    assert b["swaps"] == ["/dev/vda4"]
    assert b["addrs"] == [{"dev": "ens3", "addr": "10.0.2.15/24", "mac": "52:54:00:d1:00:0a"}]
    assert b["state"] == "degraded" and b["failed"] == ["foo.service"]
    assert drill.parse_check("no report here\n") is None


def test_judged_against_the_bundle():
    b = drill.parse_check(CONSOLE)
    problems, warnings = drill.check(M, b)
    assert problems == [] and warnings == ["failed units: foo.service"]
    cut = drill.parse_check(CONSOLE.replace("AMDR-DRILL-END\n", "")
                            .replace("AMDR-DRILL mount /srv /dev/vda3 xfs\n", "")
                            .replace("host=drill-a multiuser", "host=localhost multiuser"))
    problems, _ = drill.check(M, cut)
    assert problems == ["the restored system's report was cut short",
                        "the restored system calls itself localhost, not drill-a",
                        "/srv is not mounted"]
    problems, _ = drill.check(M, None)
    assert "did not boot to multi-user" in problems[0]


def test_the_drills_answers_are_valid(tmp_path):
    doc = drill.answers_for(M, "drill-a-20261206T231929Z.amdr.gpg", ["srv-1.amdr.gpg"], True,
                            ["ABC"])
    a = answers.validate(doc, tmp_path)
    assert a.confirm == "drill-a" and a.get("run", "drill") is True
    assert a.get("host", "bundle") == str(tmp_path / "bundles/drill-a-20261206T231929Z.amdr.gpg")
    assert a.get("unlock", "passphrase-file") == str(tmp_path / "keys.pass")
    assert a.get("plan", "vtapes") == "/media/amdr-vtapes"
    assert a.then(True) == a.then(False) == "poweroff"


def test_the_check_unit_is_installed(tmp_path):
    files = drill.install_check(str(tmp_path))
    script = tmp_path / files[0].lstrip("/")
    assert script.stat().st_mode & 0o111 and "AMDR-DRILL-END" in script.read_text()
    link = tmp_path / "etc/systemd/system/multi-user.target.wants" / drill.CHECK_UNIT
    assert link.is_symlink() and str(link.readlink()) == files[1]
    assert "KillSignal=SIGCONT" in (tmp_path / files[1].lstrip("/")).read_text()


def test_reports_render():
    r = drill.Result("drill-a", "bios", passed=True, steps={"recover": 200.5},
                     restores=[{"disk": "/", "levels": [0], "bytes": 6.4e8, "seconds": 80}],
                     finalize_changes=["GRUB installed on /dev/vda"],
                     booted=drill.parse_check(CONSOLE), iso="x.iso", workdir="/w", accel="tcg")
    t = drill.text(r)
    assert t.startswith("amanda-dr drill of drill-a (BIOS, TCG)") and "PASSED" in t.splitlines()[0]
    assert "GRUB installed on /dev/vda" in t and "640.0" in t
    h = drill.to_html(r)
    assert "<span class=\"verdict\">PASSED</span>" in h and "mounted /srv" in h
    r.passed, r.problems = False, ["/srv is <not> mounted"]
    assert "/srv is &lt;not&gt; mounted" in drill.to_html(r)


def test_the_store_reads_mail_in_a_fresh_interpreter(tmp_path):
    """`import email` alone has no email.policy: on the live image nothing else
    had imported it and reading an mbox failed (seen in the boot test)."""
    import mailbox
    import subprocess
    import sys
    from email.message import EmailMessage
    box = mailbox.mbox(str(tmp_path / "m.mbox"))
    msg = EmailMessage()
    msg["Subject"] = "bundle"
    msg.set_content("see attachment")
    msg.add_attachment(b"x", maintype="application", subtype="octet-stream",
                       filename="web1-20261201T010000Z.amdr.gpg")
    box.add(msg)
    box.close()
    p = subprocess.run([sys.executable, "-c", "import sys; from recovery import store; "
                        "print([n for n, _ in store.in_mailbox(sys.argv[1])])",
                        str(tmp_path / "m.mbox")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "web1-20261201T010000Z.amdr.gpg" in p.stdout
