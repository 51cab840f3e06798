"""The measured rows, one module per kind: in this process (`in_process`), through the pool
(`pool`), one child at a time (`child`), and through the CLI on a database (`classify`,
`jobs`). Each module's step functions take the run's `Context`; `registry.STEPS` runs them."""
