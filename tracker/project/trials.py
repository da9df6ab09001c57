"""Batch trials: the flag assignments a batch runs, expanded as Guild expands them.

A list value (`lr=[0.1,0.01]`), a sequence function (`range[1:4]`,
`linspace[0:1:5]`, `logspace[-3:-1:3]`) and rows of batch files
(`@trials.csv`, `.json`, `.yml`) make a grid (the cartesian product, flags
in name order); `uniform[a:b]`, `loguniform[a:b]` and `[a:b]` are search
dimensions, drawn per trial. `--optimizer random` draws every trial from
the dimensions instead. Nothing here runs anything or knows of runs.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import OpError
from .flagvalues import is_batch, is_flag_function, parse_value

if TYPE_CHECKING:
    import random  # imported where trials are drawn: `trk run` of a single run never needs it

DEFAULT_RANDOM_TRIALS = 20  # Guild's default --max-trials for random search
OPTIMIZERS = ("grid", "random")
_FUNCTION = re.compile(r"^([a-zA-Z0-9_\-\.]*)\[(.*)\]$", re.DOTALL)
_SEQUENCES = ("range", "linspace", "logspace")
_DISTRIBUTIONS = ("uniform", "loguniform")


@dataclass(frozen=True)
class Dist:
    """A search dimension: `uniform[low:high]` or `loguniform[low:high]`,
    with Guild's optional third argument, the first trial's value."""

    kind: str
    low: float
    high: float
    initial: Any = None
    text: str = ""

    def draw(self, rng: random.Random) -> Any:
        """One value of the dimension (an int when both bounds are ints, as skopt's Integer)."""
        if self.kind == "uniform" and isinstance(self.low, int) and isinstance(self.high, int):
            return rng.randint(self.low, self.high)
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


def _error(name: str, text: str, why: str) -> OpError:
    return OpError(f"invalid batch value {name}={text}: {why}",
                   "Use a list [A,B,...], range[START:END:STEP], linspace[START:END:N], logspace[START:END:N], "
                   "uniform[LOW:HIGH] or loguniform[LOW:HIGH].", exit_code=2)


def decode_function(text: str) -> tuple[str | None, list[Any]]:
    """`name[a:b:c]` -> (name, [a, b, c]) with each argument read as a flag
    value; the anonymous `[a:b]` has name None."""
    m = _FUNCTION.match(text.strip())
    if not m:
        raise ValueError(text)
    return (m.group(1) or None), [parse_value(a.strip()) for a in m.group(2).split(":")]


def dimension(name: str, value: Any) -> list[Any] | Dist | None:
    """What a batch value spans: a list of values (a list, `range`,
    `linspace`, `logspace`), a Dist (`uniform`, `loguniform`, `[a:b]`), or
    None for a value that is no batch."""
    if isinstance(value, list):
        return list(value)
    if not is_flag_function(value):
        return None
    fname, args = decode_function(value)
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(numbers) != len(args):
        raise _error(name, value, "arguments must be numbers")
    if fname in _SEQUENCES:
        return _sequence(name, value, fname, args)
    if fname is None or fname in _DISTRIBUTIONS:
        if len(args) not in (2, 3):
            raise _error(name, value, f"{fname or 'uniform'} takes LOW:HIGH[:INITIAL]")
        low, high = args[0], args[1]
        if low >= high or (fname == "loguniform" and low <= 0):
            raise _error(name, value, "LOW must be below HIGH" + (" and above 0" if fname == "loguniform" else ""))
        return Dist(fname or "uniform", low, high, args[2] if len(args) == 3 else None, value)
    raise _error(name, value, f"unknown function '{fname}'")


def _sequence(name: str, text: str, fname: str, args: list[Any]) -> list[Any]:
    if fname == "range":
        if not 1 <= len(args) <= 3:
            raise _error(name, text, "range takes START[:END[:STEP]]")
        if len(args) == 1:  # range[N]: 0 up to N, N left out (numpy's arange, as Guild)
            start, end, step = 0, args[0], 1
        else:
            start, end, step = (list(args) + [1])[:3]
            if step == 0:
                raise _error(name, text, "STEP must not be 0")
            end = end + min(step, 1)  # Guild's range includes its end
        count = max(0, math.ceil((end - start) / step))
        return [_seq_value(start + i * step) for i in range(count)]
    count = args[2] if len(args) > 2 else 5
    if len(args) < 2 or not isinstance(count, int) or count < 1:
        raise _error(name, text, f"{fname} takes START:END[:COUNT]")
    start, end = float(args[0]), float(args[1])
    points = [start + (end - start) * i / (count - 1) for i in range(count)] if count > 1 else [start]
    if fname == "logspace":
        base = args[3] if len(args) > 3 else 10
        points = [float(base) ** p for p in points]
    return [_seq_value(p) for p in points]


def _seq_value(x: Any) -> Any:
    # As Guild: floats rounded to 8 places, so 0.1 + 0.2 shows as 0.3.
    return round(x, 8) if isinstance(x, float) and x > 1e-8 else x


def split_batch(assigned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain values, batch values) of parsed `NAME=VALUE` assignments."""
    plain = {k: v for k, v in assigned.items() if not is_batch(v)}
    return plain, {k: v for k, v in assigned.items() if is_batch(v)}


def read_batch_file(path: str) -> list[dict[str, Any]]:
    """The trials of a batch file, one per CSV row (header: flag names) or per
    item of a JSON/YAML list of mappings, as Guild reads them."""
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except OSError as e:
        raise OpError(f"cannot read batch file {path}: {e.strerror or e}", exit_code=2) from None
    if ext == ".csv":
        import csv

        rows = list(csv.reader(text.splitlines()))
        if not rows:
            return []
        header = [h.strip() for h in rows[0]]
        return [{n: parse_value(v) for n, v in zip(header, row) if n} for row in rows[1:] if row]
    if ext == ".json":
        import json

        try:
            data = json.loads(text)
        except ValueError as e:
            raise OpError(f"batch file {path} is not valid JSON: {e}", exit_code=2) from None
    elif ext in (".yml", ".yaml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise OpError(f"batch file {path} is not valid YAML: {e}", exit_code=2) from None
    else:
        raise OpError(f"unsupported batch file {path}: use .csv, .json, .yml or .yaml", exit_code=2)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise OpError(f"batch file {path} must hold a list of flag mappings (NAME: VALUE)", exit_code=2)
    return [{str(k): v for k, v in item.items()} for item in data]


def expand(assigned: dict[str, Any], file_trials: list[dict[str, Any]] | None, optimizer: str | None,
           max_trials: int | None, seed: int) -> tuple[str, list[dict[str, Any]]]:
    """(optimizer, trial assignments) for a batch: the grid of every row (a
    batch file's, merged under the command line's values), or random draws.

    Without `optimizer`, a search dimension (`uniform[..]`) makes it random
    search, as in Guild. A grid larger than `max_trials` is sampled with
    `seed`, keeping the trials' order.
    """
    dims = {n: dimension(n, v) for n, v in assigned.items()}
    if optimizer is None:
        optimizer = "random" if any(isinstance(d, Dist) for d in dims.values()) and not file_trials else "grid"
    if optimizer not in OPTIMIZERS:
        raise OpError(f"unsupported optimizer '{optimizer}'", "Use --optimizer grid or --optimizer random.",
                      exit_code=2)
    import random

    rng = random.Random(seed)
    if optimizer == "random":
        if file_trials:
            raise OpError("--optimizer random cannot be used with batch files", "Use the grid optimizer.",
                          exit_code=2)
        return optimizer, _random(assigned, dims, max_trials or DEFAULT_RANDOM_TRIALS, rng)
    rows = [{**row, **assigned} for row in file_trials] if file_trials else [dict(assigned)]
    trials = [t for row in rows for t in _grid(row)]
    _draw_dists(trials, rng)
    if max_trials is not None and len(trials) > max_trials:
        keep = sorted(random.Random(seed).sample(range(len(trials)), max_trials))
        trials = [trials[i] for i in keep]
    return optimizer, trials


def _grid(row: dict[str, Any]) -> list[dict[str, Any]]:
    axes = []
    for name in sorted(row):
        dim = dimension(name, row[name])
        axes.append([(name, v) for v in dim] if isinstance(dim, list) else [(name, dim if dim else row[name])])
    return [dict(combo) for combo in itertools.product(*axes)]


def _draw_dists(trials: list[dict[str, Any]], rng: random.Random) -> None:
    first: set[str] = set()
    for trial in trials:
        for name, value in trial.items():
            if isinstance(value, Dist):
                use_initial = value.initial is not None and name not in first
                first.add(name)
                trial[name] = value.initial if use_initial else value.draw(rng)


def _random(assigned: dict[str, Any], dims: dict[str, Any], count: int, rng: random.Random) -> list[dict[str, Any]]:
    search = {n: d for n, d in dims.items() if d is not None}
    if not search:
        raise OpError("random search needs at least one flag with a list or a range of values",
                      "Give a flag a list ([A,B]), range[..] or uniform[LOW:HIGH].", exit_code=2)
    trials = []
    for i in range(count):
        trial = {n: v for n, v in assigned.items() if n not in search}
        for name in sorted(search):
            dim = search[name]
            if isinstance(dim, Dist):
                trial[name] = dim.initial if i == 0 and dim.initial is not None else dim.draw(rng)
            else:
                trial[name] = rng.choice(dim) if dim else None
        trials.append(trial)
    return trials
