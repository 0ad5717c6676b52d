import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def amdr(tool, *args, input=None):
    return subprocess.run([str(BIN / tool)] + [str(a) for a in args], capture_output=True,
                          text=True, input=input, stdin=None if input else subprocess.DEVNULL)


def collect(lab, out):
    p = amdr("amdr-essentials", "collect", "--out", out, "--disk", lab.loop,
             "--root", lab.mnt, "--amanda-config", lab.name)
    assert p.returncode == 0, p.stderr
    return out
