"""Views over runs: comparison tables, diffs, run details, TensorBoard.

Read-only reports built from the store and the scalar index. May import
`store`, `metrics`, `project.flags`, `display`, `fsutil` and `errors`;
never `execution`, `api` or the CLI.
"""
