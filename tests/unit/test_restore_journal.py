"""The restore journal: where a DLE's chain stands after a kill -9 or a power cut (pure)."""

from recovery.restore.journal import Position, RestoreJournal

CHAIN = [("20260101000000", 0), ("20260102000000", 1), ("20260103000000", 2)]


def test_nothing_yet(tmp_path):
    assert RestoreJournal(str(tmp_path / "j")).position("h:/", CHAIN) == Position(0, False)


def test_done_images_are_skipped_and_the_started_one_is_interrupted(tmp_path):
    j = RestoreJournal(str(tmp_path / "j"))
    j.start("h:/", *CHAIN[0])
    j.done("h:/", *CHAIN[0], 100)
    j.start("h:/srv", *CHAIN[0])  # another DLE: its own account
    j.start("h:/", *CHAIN[1])
    assert j.position("h:/", CHAIN) == Position(1, True)
    assert j.position("h:/srv", CHAIN) == Position(0, True)
    j.done("h:/", *CHAIN[1])
    assert j.position("h:/", CHAIN) == Position(2, False)


def test_a_reset_starts_the_chain_again(tmp_path):
    j = RestoreJournal(str(tmp_path / "j"))
    j.start("h:/srv", *CHAIN[0])
    j.done("h:/srv", *CHAIN[0])
    j.start("h:/srv", *CHAIN[1])
    j.reset("h:/srv", "made again")
    assert j.position("h:/srv", CHAIN) == Position(0, False)


def test_another_chain_restored_there_counts_as_interrupted(tmp_path):
    j = RestoreJournal(str(tmp_path / "j"))
    j.done("h:/", "20251201000000", 0)  # an older level 0 (--until changed since)
    assert j.position("h:/", CHAIN) == Position(0, True)


def test_a_line_cut_by_a_power_cut_is_skipped_and_the_next_starts_afresh(tmp_path):
    j = RestoreJournal(str(tmp_path / "j"))
    j.done("h:/", *CHAIN[0])
    with open(j.path, "a") as f:
        f.write('{"dle": "h:/", "date": "2026')
    assert j.position("h:/", CHAIN) == Position(1, False)
    j.done("h:/", *CHAIN[1])  # the next run's line is not glued to the cut one
    assert j.position("h:/", CHAIN) == Position(2, False)


def test_interrupted_in_an_image_this_chain_does_not_restore_next(tmp_path):
    """--until moved back after a run was killed in a newer level: the tree is
    half of that newer image, so the chain starts again."""
    j = RestoreJournal(str(tmp_path / "j"))
    j.done("h:/", *CHAIN[0])
    j.start("h:/", *CHAIN[1])
    assert j.position("h:/", CHAIN[:1]) == Position(0, True)
    assert j.position("h:/", CHAIN) == Position(1, True)


def test_restart_sets_it_aside(tmp_path):
    j = RestoreJournal(str(tmp_path / "j"))
    assert j.restart() is None
    j.done("h:/", *CHAIN[0])
    assert j.restart() == str(tmp_path / "j.1")
    assert j.position("h:/", CHAIN) == Position(0, False)
    assert (tmp_path / "j.1").stat().st_mode & 0o777 == 0o600
