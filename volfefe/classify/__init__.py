"""A post's classification as a use case: the only package that joins the store and the
supervisor.

`intelligence` classifies stored posts and writes their results (first results, reclassify,
quarantine), `run` drives a whole `classify` run (claims, batches, progress), `job` is the
body of one `volfefe.classify_post` job.
"""
