#!/usr/bin/env python3
"""The volfefe child, where the design puts it: a thin entry over `volfefe.child`.

    echo "Stocks rally on good news" | python worker/classify.py [--model M]

Works from a checkout (the package is found next to this folder) and with volfefe installed;
the orchestrator itself runs `python -m volfefe.child`. See volfefe/child/main.py.
"""

import sys
from pathlib import Path

try:
    import volfefe  # noqa: F401
except ModuleNotFoundError:  # a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from volfefe.child.main import main

if __name__ == "__main__":
    sys.exit(main())
