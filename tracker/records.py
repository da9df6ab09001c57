"""`@record`: plain data classes for the modules on `trk run`'s start-up path.

The standard `dataclasses` module imports `inspect` (and with it `ast`,
`dis`, `tokenize`...), about 8 ms of every `trk run` before the user's
program starts; the run path's own data classes need only what this gives:
an `__init__` taking the fields in order (defaults, `field(default_factory=...)`),
`__repr__`, `__eq__` over the compared fields, `frozen=True` (immutable and
hashable), and `__post_init__`. Modules off the start-up path use `dataclasses`.
"""

from __future__ import annotations

_MISSING = object()


class field:  # noqa: N801  (named as dataclasses.field, which it stands in for)
    """A field's default (`default=` or `default_factory=`) and whether it
    shows in `repr` and takes part in `==`."""

    __slots__ = ("default", "default_factory", "repr", "compare")

    def __init__(self, default=_MISSING, default_factory=None, repr=True, compare=True):  # noqa: A002
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def fields(cls) -> tuple[str, ...]:
    """The field names of a `@record` class, in order."""
    return cls.__record_fields__


def replace(obj, **changes):
    """A copy of the `@record` instance `obj` with `changes` (as `dataclasses.replace`)."""
    return type(obj)(**{**{n: getattr(obj, n) for n in fields(type(obj))}, **changes})


def record(cls=None, *, frozen: bool = False):
    """Make `cls` a data class of its annotated fields (see the module docstring)."""
    if cls is None:
        return lambda c: _build(c, frozen)
    return _build(cls, frozen)


def _build(cls, frozen: bool):
    names: list[str] = []
    for klass in reversed(cls.__mro__):  # a subclass's fields follow its base's, as in dataclasses
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            if "ClassVar" not in str(annotation) and name not in names:
                names.append(name)
    specs: dict[str, field] = {}
    for name in names:
        value = getattr(cls, name, _MISSING)
        spec = value if isinstance(value, field) else field(default=value)
        specs[name] = spec
        if isinstance(value, field):
            if spec.default is _MISSING:
                delattr(cls, name) if name in cls.__dict__ else None
            else:
                setattr(cls, name, spec.default)
    defaults = {}
    params, body = [], []
    for name, spec in specs.items():
        if spec.default_factory is not None:
            defaults[f"_f_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_f_{name}() if {name} is _MISSING else {name}"
        elif spec.default is not _MISSING:
            defaults[f"_d_{name}"] = spec.default
            params.append(f"{name}=_d_{name}")
            value = name
        else:
            if any(p.endswith(("=_MISSING",)) or "=_d_" in p for p in params):
                raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one with a default")
            params.append(name)
            value = name
        body.append(f"_set(self, {name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    scope = {"_MISSING": _MISSING, "_set": object.__setattr__, **defaults}
    exec(src, scope)  # an __init__ with real parameters: fast to call, and errors name the arguments
    cls.__init__ = scope["__init__"]
    cls.__init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__record_fields__ = tuple(names)
    shown = [n for n in names if specs[n].repr]
    compared = tuple(n for n in names if specs[n].compare)

    def __repr__(self):
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in shown)})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    cls.__repr__ = __repr__
    cls.__eq__ = __eq__
    if frozen:
        def __setattr__(self, name, value):
            raise AttributeError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")

        def __hash__(self):
            return hash(tuple(getattr(self, n) for n in compared))

        cls.__setattr__ = __setattr__
        cls.__delattr__ = __setattr__
        cls.__hash__ = __hash__
    else:
        cls.__hash__ = None  # mutable and compared by value: unhashable, as a dataclass is
    return cls
