"""`make realworld`: mlaudit measured on real material nobody here wrote.

Each part is a module in this package with a `PART` name and `run(shared: Path) -> dict`
(for example `configs`: the training-config corpus, labelled in configs.yaml). The runner
(`python -m benchmarks.realworld [PART ...]`) finds the parts, runs them against
`../shared/realworld` and merges their numbers into benchmarks/results/realworld.json.
"""
