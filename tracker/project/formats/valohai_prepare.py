"""`tracker.prepare()`: Valohai's `valohai.prepare()` for scripts (issue 12, item 3).

The call defines a step (read from the source by `valohai_scan`, never by
running it) and, when the script runs, parses the command-line overrides
(`--learning-rate=.002 --training-set=PATH`) and returns every parameter
and input by name: parameters typed like their defaults, inputs as local
paths. Imports nothing of trk beyond this module, so scripts start fast.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def prepare(*, step: str, default_parameters: Mapping[str, Any] | None = None,
            default_inputs: Mapping[str, Any] | None = None, image: str | None = None,
            environment: str | None = None, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse this script's command-line overrides of the step's parameters and
    inputs; return {name: value} with inputs as local paths. Bad values exit 2
    with a usage message, as argparse does; other arguments are left alone."""
    import argparse

    params = dict(default_parameters or {})
    inputs = dict(default_inputs or {})
    parser = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0] or step), allow_abbrev=False,
                                     description=f"Valohai step {step!r}")
    for name, default in params.items():
        if isinstance(default, bool):
            parser.add_argument(f"--{name}", dest=name, nargs="?", const=True, default=default, type=_flag)
        else:
            parser.add_argument(f"--{name}", dest=name, default=default, type=_like(default))
    for name, default in inputs.items():
        parser.add_argument(f"--{name}", dest=name, default=default, action="append" if isinstance(default, list)
                            else "store")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    values = {name: getattr(args, name) for name in params}
    for name in inputs:
        values[name] = input_path(name, getattr(args, name))
    return values


def _like(default: Any):
    """The parser of a value typed like `default` (an int stays an int...)."""
    if isinstance(default, int):
        return _named(int, "an integer")
    if isinstance(default, float):
        return _named(float, "a number")
    return str


def _named(convert, what: str):
    def parse(text: str):
        try:
            return convert(text)
        except ValueError:
            raise ValueError(what) from None

    parse.__name__ = what  # argparse names it in "invalid an integer value"
    return parse


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on", "y"):
        return True
    if value in ("0", "false", "no", "off", "n", ""):
        return False
    raise ValueError(text)


def input_path(name: str, value: Any) -> Any:
    """An input as a local path: the files trk (or Valohai) placed in
    `inputs/NAME/`, else a local path as given, else a URL downloaded there."""
    if isinstance(value, list):
        if len(value) == 1:
            value = value[0]
        else:
            found = _placed(name)
            return found if found is not None else [input_path(name, v) for v in value]
    found = _placed(name)
    if found is not None:
        return found
    if not isinstance(value, str) or not value:
        return value
    if _URL.match(value):
        return _download(name, value)
    return os.path.abspath(value)


def _inputs_dir(name: str) -> str:
    return os.path.join(os.environ.get("VH_INPUTS_DIR") or "inputs", name)


def _placed(name: str) -> str | None:
    """The input's one file (its directory when it has several) under `inputs/NAME/`."""
    folder = _inputs_dir(name)
    if not os.path.isdir(folder):
        return None
    files = [os.path.join(root, f) for root, _, names in os.walk(folder) for f in names]
    return os.path.abspath(files[0] if len(files) == 1 else folder)


def _download(name: str, url: str) -> str:
    """Fetch a URL into `inputs/NAME/` (Valohai's layout) once; its path."""
    import urllib.parse
    import urllib.request

    base = os.path.basename(urllib.parse.urlparse(url).path) or name
    dest = os.path.abspath(os.path.join(_inputs_dir(name), base))
    if not os.path.exists(dest):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = dest + ".part"
        with urllib.request.urlopen(url) as src, open(tmp, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.replace(tmp, dest)
    return dest
