"""What every suite shares, each piece once: `model` (build or reuse the model), `database`
(a fresh one per run or row), `corpus` (the sample posts, drawn as each suite draws them),
`stats` (percentiles), `tables` (Markdown tables), `logs` (progress on stderr), `settings`
(`--set` and the environment), `process` (paths, subprocesses), `suite` (what a suite is),
`results` (the result JSON and its metadata) and `render` (the docs pages from the results)."""
