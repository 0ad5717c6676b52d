"""The whole demo flow against the real lab: back up, lose the disk, recover, verify."""

import pytest

from tests.lab import lab as labmod
from tests.lab.demo import run_demo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo():
    return run_demo(log=lambda *a: None)


def test_every_dle_restored_and_verified(demo):
    assert demo["problems"] == []
    assert demo["ok"]
    assert {r["dle"] for r in demo["rows"]} and len(demo["rows"]) == 2
    for row in demo["rows"]:
        assert row["diffs"] == []
        assert row["files"] > 0


def test_history_has_two_fulls_and_the_newer_chain_is_used(demo):
    runs = demo["runs"]
    levels = [sorted(set(lv.values())) for _, lv in runs]
    assert levels == [[0], [1], [2], [0], [1], [2]]
    newest_chain = [ds for ds, _ in runs[3:]]
    for row in demo["rows"]:
        assert row["levels"] == [0, 1, 2]
        # the images come from runs 4-6, not from the older level 0 of run 1
        assert row["dates"] == newest_chain


def test_identities_recreated(demo):
    ids = demo["identities"]
    assert ids[1]["UUID"] == labmod.ROOT_UUID and ids[1]["LABEL"] == "lab-root"
    assert ids[2]["UUID"] == labmod.DATA_UUID and ids[2]["LABEL"] == "lab-data"
    assert ids[3]["UUID"] == labmod.SWAP_UUID and ids[3]["TYPE"] == "swap"
    assert ids[1]["PART_ENTRY_NAME"] == "lab-root"
