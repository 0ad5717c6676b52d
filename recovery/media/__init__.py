"""The volumes, below both the catalog and the restore: Amanda's 32 KiB
headers and its string quoting (volumes.py, quoting.py), vtape slots
(volumes.py), tape drives and changers (devices.py), and how a volume is put
in reach and an image positioned (positioning.py).  Nothing here imports the
catalog or the restore (tests/unit/test_layers.py holds it to that)."""
