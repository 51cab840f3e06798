"""The harness's orphan check: a volfefe child whose parent died is found and killed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers import eventually
from volfefe.chaos.procs import snapshot

# A subreaper whose middle process starts a look-alike `... volfefe.child` and dies at once,
# so the look-alike is orphaned (and re-parented to the subreaper, not to init).
SCRIPT = textwrap.dedent("""
    import json, subprocess, sys
    from volfefe.chaos.harness import _wait_for_no_children
    from volfefe.chaos.procs import become_subreaper
    become_subreaper()
    orphan = "import time; time.sleep(120)"
    middle = (
        "import subprocess, sys; "
        f"subprocess.Popen([sys.executable, '-c', {orphan!r}, 'volfefe.child'])"
    )
    subprocess.run([sys.executable, "-c", middle], check=True)
    print(json.dumps(_wait_for_no_children(1.0)))
""")


def test_an_orphaned_child_is_reported_and_killed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    orphans = json.loads(done.stdout)
    assert len(orphans) == 1, done.stderr
    eventually(lambda: orphans[0] not in snapshot() or snapshot()[orphans[0]].state == "Z")
