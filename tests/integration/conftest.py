import shutil

import pytest

from essentials import sealed


@pytest.fixture(autouse=True)
def remove_what_this_test_decrypted(monkeypatch):
    """Tests that unseal in-process remove the plaintext directories they made
    (the CLI removes its own at exit); only this process's, so two test runs
    on one machine never delete each other's."""
    made = []
    real = sealed.private_dir

    def recording(*a, **kw):
        d = real(*a, **kw)
        made.append(d)
        return d

    monkeypatch.setattr(sealed, "private_dir", recording)
    yield
    for d in made:
        shutil.rmtree(d, ignore_errors=True)
