"""python3 -m recovery ...: amdr-recover, run by the interpreter that runs it
(amdr-essentials writes the runbook this way: the same package, no PATH)."""

import sys

from .cli import main

sys.exit(main())
