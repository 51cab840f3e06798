"""PostgreSQL: connections, the embedded server, migrations, posts and their results.

`connect` / `embedded` find and open the database, `migrate` + `migrations/` own the schema,
`posts` the SQL over contents and classifications, `importer` reads files of posts, `claims`
splits work between concurrent runs. Plain SQL: what joins the store and the classifier lives
in `volfefe.classify`.
"""
