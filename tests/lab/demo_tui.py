"""make demo-tui: the lab's disk lost, and the text UI waiting for a person.

The lab runs its backup history, amdr-essentials seals the bundle onto a
"USB" directory, the disk is destroyed; then `amdr-recover tui` starts in a
tmux session (80x24) and this prints how to attach and the passphrase.  Pick
the host, type the passphrase, type the host name: the rest runs by itself.
When the UI ends (F10, or a choice on the summary), each restored DLE is
compared with the last backup's manifest, and the lab is taken down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from . import tree
from .demo import BIN, SITE_PASSPHRASE, essentials_config
from .keys import make_keys
from .lab import AmandaLab

SESSION = "amdr-demo"


def main() -> int:
    if os.geteuid() != 0:
        print("make demo-tui must run as root (loop devices, mounts, Amanda)", file=sys.stderr)
        return 2
    keys = make_keys(SITE_PASSPHRASE)
    try:
        with AmandaLab() as lab:
            print(f"lab {lab.name}: running its backup history ...", flush=True)
            runs = lab.run_history()
            usb = lab.base / "usb"
            p = subprocess.run([str(BIN / "amdr-essentials"), "run", "-c",
                                str(essentials_config(lab, keys, usb))],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                print(p.stdout + p.stderr)
                return 1
            lab.destroy_disk()
            target = lab.base / "target"
            cmd = (f"{BIN / 'amdr-recover'} tui --media {usb} --store {lab.base / 'store'} "
                   f"--gnupghome {keys.recovery_home} --target {target} --no-finalize; "
                   f"echo; echo 'the UI has ended: back in the terminal of make demo-tui'; "
                   f"sleep 5")
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24",
                            cmd], check=True)
            print(f"\nThe lab's disk {lab.loop} is destroyed; its bundle is in {usb}.\n"
                  f"The recovery waits for you:  tmux attach -t {SESSION}\n"
                  f"  the recovery key's passphrase: {SITE_PASSPHRASE}\n"
                  f"  (the lab's own files: no real secret)\n"
                  f"Waiting for the UI to end ...", flush=True)
            while subprocess.run(["tmux", "has-session", "-t", SESSION],
                                 capture_output=True).returncode == 0:
                time.sleep(2)
            ok = True
            dirs = {lab.root_disk: target, lab.data_disk: target / "srv"}
            for disk, expected in runs[-1].manifests.items():
                exclude = {"lost+found", "srv"} if disk == lab.root_disk else {"lost+found"}
                if not dirs[disk].is_dir():
                    print(f"{disk}: not restored")
                    ok = False
                    continue
                diffs = tree.compare(expected, tree.snapshot(str(dirs[disk]), exclude=exclude))
                print(f"{disk}: {'verified' if not diffs else 'DIFFERS: ' + diffs[0]}")
                ok = ok and not diffs
            subprocess.run([str(BIN / "amdr-recover"), "umount", "--target", str(target)],
                           capture_output=True)
            print("demo-tui:", "every DLE verified" if ok else "not every DLE was restored")
            return 0 if ok else 1
    finally:
        keys.cleanup()


if __name__ == "__main__":
    sys.exit(main())
