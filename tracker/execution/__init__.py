"""Execution: running operations and recording them as runs.

Owns the run lifecycle (`lifecycle`: prepare, supervise, finish, link
children), launching (`launch`, `relaunch`), building commands (`command`),
supervising processes (`process`), pipelines (`pipeline`), dependencies
(`deps`) and reuse (`needed`). May import `project`, `store`, `metrics`,
`fsutil` and `errors`; never `views`, `api` or the CLI.
"""
