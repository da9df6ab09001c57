"""One YAML file of a format (dstack, Gradient), with the line of every key.

A format reads its files through `YamlDoc`: the data (safe loader), and
`where(keys)` / `error(keys, ...)` / `warn(keys, ...)` naming the file and the
line of a key path, so every message about a malformed file is one line
naming file, line and key (exit 2).
"""

from __future__ import annotations

import os

from ...errors import ProjectError


class YamlDoc:
    """A parsed YAML file: `data`, its node tree for line numbers, and its warnings."""

    def __init__(self, path: str, project_dir: str):
        import yaml

        from .modelcache import note_file

        note_file(path)
        self.path = path
        self.name = os.path.relpath(path, project_dir)
        self.warnings: list[str] = []
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ProjectError(f"cannot read {self.name}: {e}", exit_code=2) from None
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
        try:
            self.root = loader.get_single_node()
            self.data = loader.construct_document(self.root) if self.root is not None else None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            raise ProjectError(f"{self.name}, line {mark.line + 1 if mark else 1}: {e.problem or e}",
                               exit_code=2) from None
        except yaml.YAMLError as e:
            raise ProjectError(f"{self.name}: {e}", exit_code=2) from None
        finally:
            loader.dispose()

    def line(self, keys: tuple = ()) -> int:
        """The line of the deepest node of `keys` found (1 for an empty file)."""
        from ..loader import node_line

        return node_line(self.root, keys)

    def key_line(self, keys: tuple) -> int:
        """The line of the key itself (not its value) of the last item of `keys`."""
        import yaml

        node = self.root
        for i, key in enumerate(keys):
            if isinstance(node, yaml.MappingNode):
                hit = [(k, v) for k, v in node.value if k.value == str(key)]
                if not hit:
                    break
                if i == len(keys) - 1:
                    return hit[-1][0].start_mark.line + 1
                node = hit[-1][1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
                node = node.value[key]
            else:
                break
        return self.line(keys)

    def where(self, keys: tuple = ()) -> str:
        """`FILE, line N` of a key path, to start a message."""
        return f"{self.name}, line {self.key_line(keys) if keys else 1}"

    def error(self, keys: tuple, message: str) -> ProjectError:
        """The error (exit 2) for bad input at `keys`: file, line, key path and what is wrong."""
        return ProjectError(f"{self.where(keys)}: {_keyname(keys)}: {message}", exit_code=2)

    def warn(self, keys: tuple, message: str) -> None:
        """Note a warning at `keys` (shown when the project loads)."""
        line = f"{self.where(keys)}: {_keyname(keys)}: {message}"
        if line not in self.warnings:  # a default several jobs share is reported once
            self.warnings.append(line)

    def check_keys(self, mapping: dict, keys: tuple, known: set[str], required: tuple[str, ...], what: str) -> None:
        """Warn of unknown keys of `mapping` (at `keys`), refuse a missing required one."""
        for k in mapping:
            if str(k) not in known:
                self.warn(keys + (k,), f"unknown key in {what} ignored")
        for k in required:
            if k not in mapping:
                raise ProjectError(f"{self.where(keys)}: {_keyname(keys)}: {what} is missing required key '{k}'",
                                   exit_code=2)


def _keyname(keys: tuple) -> str:
    """A key path as `a.b[0].c`."""
    out = ""
    for k in keys:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(top level)"
