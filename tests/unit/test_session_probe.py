"""mount's probe of the disks here: a blkid that failed is not "nothing there"."""

import pytest

from essentials.errors import AmdrError
from essentials.runner import Result, Runner
from recovery.session import probe


class Answers(Runner):
    def __init__(self, rc, out=b"", err=b""):
        super().__init__(dry_run=False)
        self.answer = (rc, out, err)

    def run(self, argv, **kw):
        rc, out, err = self.answer
        return Result(argv, rc, out, err)


def test_found_and_nothing_found():
    assert probe(Answers(0, b"TYPE=ext4\nUUID=abc\n"), "/dev/null") == {"TYPE": "ext4",
                                                                     "UUID": "abc"}
    assert probe(Answers(2), "/dev/null") == {}


@pytest.mark.parametrize("rc, err, says", [
    (2, b"blkid: error: /dev/null: Permission denied\n", "Permission denied"),
    (8, b"ambivalent result (probably more filesystems on the device, use wipefs(8))",
     "more than one signature"),
])
def test_a_failed_probe_is_an_error_that_names_the_device(rc, err, says):
    with pytest.raises(AmdrError) as e:
        probe(Answers(rc, b"", err), "/dev/null")
    assert "cannot tell what is on /dev/null" in str(e.value) and says in str(e.value)


def test_a_device_node_that_is_gone():
    with pytest.raises(AmdrError, match="does not exist"):
        probe(Answers(2), "/dev/no-such-disk-here")
