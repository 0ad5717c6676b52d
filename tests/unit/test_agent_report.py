"""The run's verdict (exit code for cron and monitoring) and the text cron mails."""

from pathlib import Path

import pytest

from essentials.agent import DeliveryOutcome, Outcome, report
from essentials.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL

NEW = "web1-20261122T010203Z.amdr.gpg"
OLD = "web1-20261115T010203Z.amdr.gpg"
SPOOL = Path("/var/spool/amanda-dr")


def ok_collectors() -> dict:
    return {
        "etc": {"status": "ok", "duration": 1.25, "detail": {"files": 812, "bytes": 2048}},
        "layout": {"status": "ok", "duration": 0.4},
    }


def outcome(**kw) -> Outcome:
    base = dict(host="web1", collectors=ok_collectors(), bundle=SPOOL / NEW,
                bundle_size=2_500_000)
    base.update(kw)
    return Outcome(**base)


def delivered(name="sftp:store", bundle=NEW, where="sftp://store/bundles/web1/" + NEW):
    return DeliveryOutcome(bundle, name, True, where)


def failed(name="mail:dr@example.com", bundle=NEW, why="connection refused"):
    return DeliveryOutcome(bundle, name, False, why)


# -- exit codes --------------------------------------------------------------------

def test_no_bundle_is_failed():
    out = outcome(bundle=None, bundle_error="every collector failed; no bundle was made",
                  collectors={"etc": {"status": "failed", "error": "tar: boom",
                                      "duration": 0.1}})
    assert out.exit_code == EXIT_FAILED == 3
    assert out.verdict == "FAILED"


def test_no_bundle_even_if_old_spooled_bundles_were_delivered():
    out = outcome(bundle=None, bundle_error="gpg failed", deliveries=[delivered(bundle=OLD)])
    assert out.exit_code == 3


def test_bundle_delivered_nowhere_is_failed():
    out = outcome(deliveries=[failed(), failed("sftp:store", why="host key changed")])
    assert out.exit_code == 3
    assert out.verdict == "FAILED"


def test_bundle_with_no_delivery_attempt_is_failed():
    assert outcome(deliveries=[]).exit_code == 3


def test_only_an_old_bundle_reached_a_delivery_is_failed():
    out = outcome(deliveries=[delivered(bundle=OLD), failed()])
    assert out.exit_code == 3


def test_all_ok():
    out = outcome(deliveries=[delivered(), delivered("mail:dr", where="mailed to dr")])
    assert out.exit_code == EXIT_OK == 0
    assert out.verdict == "ok"


def test_failed_collector_but_delivered_is_partial():
    cols = ok_collectors()
    cols["amanda"] = {"status": "failed", "error": "amadmin: not found", "duration": 0.0}
    out = outcome(collectors=cols, deliveries=[delivered()])
    assert out.exit_code == EXIT_PARTIAL == 1
    assert out.verdict == "PARTIAL"


def test_one_delivery_failed_one_ok_is_partial():
    out = outcome(deliveries=[delivered(), failed()])
    assert out.exit_code == 1


def test_old_bundle_failing_while_new_one_delivered_is_partial():
    out = outcome(deliveries=[failed(bundle=OLD), delivered()])
    assert out.exit_code == 1


def test_dropped_bundles_are_partial():
    out = outcome(deliveries=[delivered()], dropped=[OLD])
    assert out.exit_code == 1
    assert out.verdict == "PARTIAL"


# -- report ----------------------------------------------------------------------

def test_report_all_ok_exact():
    out = outcome(deliveries=[delivered()])
    assert report(out) == "\n".join([
        "amdr-essentials run on web1: ok (exit 0)",
        "collectors:",
        "  etc       ok        1.25s  files=812 bytes=2048",
        "  layout    ok        0.40s",
        f"bundle: {NEW} (2.5 MB)",
        "deliveries:",
        f"  sftp:store: {NEW}: ok: sftp://store/bundles/web1/{NEW}",
    ])


def test_report_columns_fit_the_longest_collector_name():
    cols = ok_collectors()
    cols["capabilities"] = {"status": "ok", "duration": 0.7, "detail": {"files": 3}}
    lines = report(outcome(collectors=cols, deliveries=[delivered()])).splitlines()
    assert lines[2:5] == ["  etc          ok        1.25s  files=812 bytes=2048",
                          "  layout       ok        0.40s",
                          "  capabilities ok        0.70s  files=3"]


def test_report_partial_names_errors_warnings_deliveries_and_waiting():
    cols = ok_collectors()
    cols["etc"]["warnings"] = ["etc/shadow- unreadable", "etc/ssl/private excluded"]
    cols["amanda"] = {"status": "failed", "error": "amadmin: not found", "duration": 0.02}
    out = outcome(collectors=cols, bundle_size=51_200,
                  deliveries=[delivered(), failed(), failed(bundle=OLD)],
                  waiting=[OLD, NEW], dropped=["web1-20261101T010203Z.amdr.gpg"])
    text = report(out)
    lines = text.splitlines()
    assert lines[0] == "amdr-essentials run on web1: PARTIAL (exit 1)"
    assert "  amanda    failed    0.02s  amadmin: not found" in lines
    i = lines.index("  etc       ok        1.25s  files=812 bytes=2048")
    assert lines[i + 1:i + 3] == ["            warning: etc/shadow- unreadable",
                                  "            warning: etc/ssl/private excluded"]
    assert f"bundle: {NEW} (51.2 kB)" in lines
    assert f"  sftp:store: {NEW}: ok: sftp://store/bundles/web1/{NEW}" in lines
    assert f"  mail:dr@example.com: {NEW}: FAILED: connection refused" in lines
    assert f"  mail:dr@example.com: {OLD}: FAILED: connection refused" in lines
    assert ("dropped from the spool (never delivered): web1-20261101T010203Z.amdr.gpg"
            in lines)
    assert lines[-1] == f"waiting in the spool, retried next run: {OLD}, {NEW}"


def test_report_no_bundle():
    out = outcome(bundle=None, bundle_error="every collector failed; no bundle was made",
                  collectors={"etc": {"status": "failed", "error": "tar: exit 2",
                                      "duration": 3.0}})
    assert report(out) == "\n".join([
        "amdr-essentials run on web1: FAILED (exit 3)",
        "collectors:",
        "  etc       failed    3.00s  tar: exit 2",
        "bundle: none: every collector failed; no bundle was made",
    ])


def test_report_without_collectors_or_deliveries():
    out = Outcome(host="db-01", bundle=None, bundle_error="spool full")
    assert report(out) == ("amdr-essentials run on db-01: FAILED (exit 3)\n"
                           "bundle: none: spool full")


@pytest.mark.parametrize("detail,summary", [
    ({"packages": 1234, "manager": "dpkg"}, "packages=1234 manager=dpkg"),
    ({"configs": ["DailySet1", "Weekly"], "ratio": 0.5}, "configs=2 ratio=0.5"),
    ({"nested": {"a": 1}}, ""),
    ("not a mapping", ""),
])
def test_report_collector_detail_summary(detail, summary):
    out = outcome(collectors={"packages": {"status": "ok", "duration": 2, "detail": detail}},
                  deliveries=[delivered()])
    line = report(out).splitlines()[2]
    assert line == f"  packages  ok        2.00s  {summary}".rstrip()


def _runbook_cfg(tmp_path, fmt="pdf", sealed_=True):
    return {"runbook": {"format": fmt, "sealed": sealed_},
            "gpg": {"home": str(tmp_path / "gnupg"), "passphrase_file": None}}


def test_a_runbook_that_cannot_be_written_is_said_and_the_run_is_partial(tmp_path):
    """amdr-recover runbook failing (here: no WeasyPrint) leaves no runbook file,
    the run's exit PARTIAL and the reason in cron's mail; the bundle stays as
    it is; what a killed run left in the runbook's work directory is gone."""
    import sys
    from essentials.agent import make_runbook
    from essentials.runner import Result, Runner
    why = b"amdr-recover: weasyprint: not installed (apt install weasyprint)\n"
    runner = Runner(dry_run=True, responses={"timeout": Result([], 3, b"", why)})
    spool, work = tmp_path / "spool", tmp_path / "work"
    spool.mkdir(), work.mkdir()
    bundle = spool / "web1-20261122T010203Z.amdr.gpg"
    bundle.write_bytes(b"sealed")
    stale = work / "web1-20261122T010203Z.runbook"
    stale.mkdir()
    (stale / "web1-20261122T010203Z.runbook.pdf").write_bytes(b"%PDF an older run's")
    out = Outcome("web1", collectors={"etc": {"status": "ok", "duration": 0.1}},
                  bundle=bundle)
    out.deliveries = [DeliveryOutcome(bundle.name, "usb", True, "local:/media/usb")]
    assert out.exit_code == EXIT_OK
    make_runbook(_runbook_cfg(tmp_path), runner, out, work / "web1-20261122T010203Z", work,
                 bundle, (["A"], "B"))
    assert out.runbook is None and "weasyprint: not installed" in out.runbook_error
    assert sorted(p.name for p in spool.iterdir()) == [bundle.name]
    assert list(work.iterdir()) == []  # the stale runbook was not taken for this one
    assert out.exit_code == EXIT_PARTIAL
    text = report(out)
    assert "runbook: NOT WRITTEN: amdr-recover runbook failed: amdr-recover: weasyprint" in text
    [cmd] = [r.commands[0].argv for r in runner.recorded]
    assert cmd[:3] == ["timeout", "-k", "10"] and cmd[4] == sys.executable
    assert cmd[5:8] == ["-m", "recovery", "runbook"] and "--bundle-name" in cmd


def test_a_runbook_without_a_chain_of_the_servers_catalog_is_partial():
    out = Outcome("backup1", collectors={"etc": {"status": "ok", "duration": 0.1}},
                  bundle=Path("/spool/backup1-20261122T010203Z.amdr.gpg"))
    out.deliveries = [DeliveryOutcome(out.bundle.name, "usb", True, "local:/media/usb")]
    out.runbook = "backup1-20261122T010203Z.runbook.pdf.gpg"
    out.runbook_note = "PARTIAL: no restore chain for backup1:/srv: no level 0"
    out.runbook_partial = True
    assert out.exit_code == EXIT_PARTIAL
    assert ("runbook: backup1-20261122T010203Z.runbook.pdf.gpg (PARTIAL: no restore chain "
            "for backup1:/srv: no level 0)") in report(out)
