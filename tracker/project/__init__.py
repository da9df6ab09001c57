"""Project files: what the user wrote, read and checked.

Owns `trk.yml` / `guild.yml` (models, operations), flag definitions and
values, resolving `[MODEL:]OP`, step specs of pipelines, and source-code
rules. May import `tracker.errors` and `tracker.fsutil`; never the store,
execution or the CLI.
"""

from .loader import Model, OpDef, Project, find_project_file, load, load_file

__all__ = ["Model", "OpDef", "Project", "find_project_file", "load", "load_file"]
