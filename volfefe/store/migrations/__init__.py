"""Forward-only SQL migrations, applied in name order by `volfefe.store.migrate.migrate`.

Each file is named `NNNN_description.sql`, runs in its own transaction and must not contain
BEGIN or COMMIT. Never edit a file that has shipped: add the next number instead.
"""
