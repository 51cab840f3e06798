"""`python -m volfefe.child`: the child process (see volfefe.child.main)."""

import sys

from volfefe.child.main import main

sys.exit(main())
