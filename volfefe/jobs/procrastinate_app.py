"""volfefe's procrastinate app for procrastinate's own command line, built from the environment.

```sh
procrastinate --app=volfefe.jobs.procrastinate_app.app healthchecks
procrastinate --app=volfefe.jobs.procrastinate_app.app shell
procrastinate --app=volfefe.jobs.procrastinate_app.app worker
```
`app` is made on first access (PEP 562), from the same `VOLFEFE_*` variables and
`DATABASE_URL` as `volfefe` (without `DATABASE_URL`, the embedded server), with the same tasks,
retry policy and recorded attempts as `volfefe jobs worker`: a task run by procrastinate's
worker opens its own `Classifier` and connection pool on first use. Importing this module
reads nothing and connects nowhere.
"""

from __future__ import annotations

import os
from typing import Any

from volfefe.config import Settings


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from volfefe.jobs.app import make_app
    from volfefe.jobs.logs import install_job_logging
    from volfefe.store.connect import resolve_database_url

    settings = Settings.from_env(os.environ)
    app = make_app(settings, resolve_database_url(settings))
    install_job_logging()
    globals()["app"] = app  # later accesses find it without coming back here
    return app
