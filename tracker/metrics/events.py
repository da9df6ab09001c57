"""TensorBoard event files, written and read fast.

Records use TFRecord framing (length, masked CRC-32C, data, masked CRC-32C)
with checksums from the `crc32c` C extension. Scalar events are encoded by
hand (no protobuf needed to write); reading decodes with tensorboard's
`event_pb2` and verifies every checksum. `aggregate` sums scalars up per
tag; `find_event_files` says which event files belong to a run, `prefix_of`
under which name their scalars show.
"""

from __future__ import annotations

import math
import os
import struct
import time
from collections import deque
from ..records import field, record
from itertools import count

from .aggs import shortest

_COUNTER = count()
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
STEP_MIN, STEP_MAX = -(1 << 63), (1 << 63) - 1  # an event's step is an int64


def _crc32c():
    import crc32c

    return crc32c.crc32c


def masked_crc(data: bytes, _crc=None) -> int:
    """TFRecord's masked CRC-32C of `data`."""
    crc = (_crc or _crc32c())(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    if n < 0:
        n &= 0xFFFFFFFFFFFFFFFF  # two's complement, as protobuf encodes a negative int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)




def _f32(value: float) -> bytes:
    """float32 bytes; values beyond its range become +/-inf, as TF casts them."""
    try:
        return _F32.pack(value)
    except OverflowError:
        return _F32.pack(math.inf if value > 0 else -math.inf)


def clamp_step(step: int) -> int:
    """`step` limited to the int64 range of an event's step."""
    return STEP_MAX if step > STEP_MAX else STEP_MIN if step < STEP_MIN else step


def encode_scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """An Event{wall_time, step, summary{value{tag, simple_value}}} message.

    A step beyond int64 is clamped (see `clamp_step`): a longer varint would
    make the record unreadable, and every record after it with it.
    """
    if not -0x8000000000000000 <= step <= 0x7FFFFFFFFFFFFFFF:  # literals: no global lookups per scalar
        step = clamp_step(step)
    tb = tag.encode("utf-8")
    val = b"\x0a" + _varint(len(tb)) + tb + b"\x15" + _f32(value)
    summary = b"\x0a" + _varint(len(val)) + val
    return b"\x09" + _F64.pack(wall_time) + b"\x10" + _varint(step) + b"\x2a" + _varint(len(summary)) + summary


def encode_file_version(wall_time: float) -> bytes:
    """The first event of every event file: its format version."""
    v = b"brain.Event:2"
    return b"\x09" + _F64.pack(wall_time) + b"\x1a" + _varint(len(v)) + v


class EventWriter:
    """Appends scalar events to a new `events.out.tfevents.*` file in `dir`."""

    def __init__(self, dir: str, filename_suffix: str = ""):
        os.makedirs(dir, exist_ok=True)
        import socket  # here: most trk processes never write an event file

        name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_COUNTER)}{filename_suffix}")
        self.path = os.path.join(dir, name)
        self._crc = _crc32c()
        self._buf: list[bytes] = []
        self._f = open(self.path, "ab")
        self._append(encode_file_version(time.time()))
        self.flush()

    def _append(self, data: bytes) -> None:
        crc = self._crc
        header = _U64.pack(len(data))
        h = crc(header)
        d = crc(data)
        self._buf.append(
            header
            + _U32.pack((((h >> 15) | (h << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
            + data
            + _U32.pack((((d >> 15) | (d << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
        )

    def add_scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        """Append one scalar (written at the next flush)."""
        self._append(encode_scalar_event(tag, float(value), int(step), wall_time or time.time()))

    def add_scalars(self, scalars, wall_time: float | None = None) -> None:
        """Append several (tag, value, step) scalars at one wall time."""
        wall = wall_time or time.time()
        for tag, value, step in scalars:
            self._append(encode_scalar_event(tag, float(value), int(step), wall))

    @property
    def pending(self) -> bool:
        """True when added scalars wait for `flush`."""
        return bool(self._buf)

    def flush(self) -> None:
        """Write buffered records and flush the file, so readers see them."""
        if self._buf:
            self._f.write(b"".join(self._buf))
            self._buf.clear()
        self._f.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._f.closed:
            self.flush()
            self._f.close()


@record
class ReadResult:
    """Scalars read from an event file, and where a next read continues."""
    scalars: list = field(default_factory=list)  # (tag, step, value)
    end_offset: int = 0
    warning: str | None = None
    truncated: bool = False  # the file ends inside a record (growing, or cut)


_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF = 1, 2, 3, 9, 19


def _tensor_scalar(t):
    """The value of a 0-d (or 1-element) numeric tensor, else None."""
    dims = t.tensor_shape.dim
    if len(dims) > 1 or (dims and dims[0].size != 1):
        return None
    dt = t.dtype
    if dt == _DT_FLOAT:
        if t.float_val:
            return t.float_val[0]
        if len(t.tensor_content) == 4:
            return _F32.unpack(t.tensor_content)[0]
    elif dt == _DT_DOUBLE:
        if t.double_val:
            return t.double_val[0]
        if len(t.tensor_content) == 8:
            return _F64.unpack(t.tensor_content)[0]
    elif dt == _DT_HALF:
        if t.half_val:
            return struct.unpack("<e", struct.pack("<H", t.half_val[0]))[0]
        if len(t.tensor_content) == 2:
            return struct.unpack("<e", t.tensor_content)[0]
    elif dt == _DT_INT32 and t.int_val:
        return float(t.int_val[0])
    elif dt == _DT_INT64 and t.int64_val:
        return float(t.int64_val[0])
    return None


def read_scalars(path: str, offset: int = 0, wall_time: bool = False) -> ReadResult:
    """Read the scalars of complete records from `offset`; never raises on bad data.

    Each scalar is `(tag, step, value)`, or `(tag, step, value, wall_time)`
    when `wall_time` (plots with a time axis).

    A checksum mismatch stops reading with a warning naming the byte offset;
    a partial record at the end stops reading at its start (`truncated`).
    """
    from tensorboard.compat.proto import event_pb2

    crc = _crc32c()
    result = ReadResult(end_offset=offset)
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as e:
        result.warning = f"cannot read {path}: {e}"
        return result
    out = result.scalars
    pos, n = 0, len(data)
    parse = event_pb2.Event.FromString
    while pos < n:
        if n - pos < 12:
            result.truncated = True
            break
        header = data[pos:pos + 8]
        (length,) = _U64.unpack(header)
        (hcrc,) = _U32.unpack_from(data, pos + 8)
        if hcrc != masked_crc(header, crc):
            result.warning = f"{path}: corrupt record header at byte {offset + pos}; later records skipped"
            break
        end = pos + 12 + length + 4
        if end > n:
            result.truncated = True
            break
        body = data[pos + 12:pos + 12 + length]
        (dcrc,) = _U32.unpack_from(data, pos + 12 + length)
        if dcrc != masked_crc(body, crc):
            result.warning = f"{path}: corrupt record at byte {offset + pos}; later records skipped"
            break
        try:
            ev = parse(body)
        except Exception:
            result.warning = f"{path}: undecodable event at byte {offset + pos}; later records skipped"
            break
        pos = end
        if not ev.HasField("summary"):
            continue
        step = ev.step
        wall = ev.wall_time if wall_time else None
        for v in ev.summary.value:
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                x = v.simple_value
            elif kind == "tensor":
                plugin = v.metadata.plugin_data.plugin_name
                if plugin and plugin != "scalars":
                    continue
                x = _tensor_scalar(v.tensor)
                if x is None:
                    continue
                x = float(x)
            else:
                continue
            out.append((v.tag, step, x) if wall is None else (v.tag, step, x, wall))
    result.end_offset = offset + pos
    return result


def prefix_of(relpath: str) -> str:
    """Prefix of an event file: its directory, without a trailing `.trk`."""
    parts = os.path.dirname(relpath).split(os.sep) if os.path.dirname(relpath) else []
    if parts and parts[-1] in (".trk", ".guild"):
        parts = parts[:-1]
    return "/".join(parts)


def aggregate(scalars) -> dict[str, list]:
    """{tag: [first, last, min, max, count, sum, first_step, last_step]} of
    `(tag, step, value)` scalars; min and max skip NaN values, sum does not.
    First, last, min and max are float32 values at their shortest (`aggs.shortest`)."""
    aggs: dict[str, list] = {}
    for tag, step, value in scalars:
        a = aggs.get(tag)
        if a is None:
            aggs[tag] = [value, value, value, value, 1, value, step, step]
            continue
        if step >= a[7]:
            a[1], a[7] = value, step
        if step < a[6]:
            a[0], a[6] = value, step
        if value < a[2] or a[2] != a[2]:  # NaN never wins over a number
            a[2] = value
        if value > a[3] or a[3] != a[3]:
            a[3] = value
        a[4] += 1
        a[5] += value
    for a in aggs.values():  # first, last, min, max as logged (float32 0.1 is 0.1)
        a[0], a[1], a[2], a[3] = shortest(a[0]), shortest(a[1]), shortest(a[2]), shortest(a[3])
    return aggs


def is_event_file(name: str) -> bool:
    """True for a TensorBoard event file name (`events.out.tfevents.*`)."""
    return name.startswith("events.out.tfevents.") or ".tfevents." in name


def find_event_files(run_dir: str) -> list[tuple[str, str]]:
    """(relative path, path) of the event files of a run and of its steps.

    Only the run's own files count. Files its dependencies placed in it
    (attr `deps`: linked or copied from an upstream run or the project) are
    that source's scalars, not the run's. Symlinks are not followed: a link
    out of the run (`ln -s / root`) would have the walk read the file system.
    One kind of link is followed, a pipeline's step link: a link to another
    run directory in the same runs directory (a directory with `.trk/`)
    that no dependency placed. Its `parent` attr may name another run: a
    step reused with `--needed` is a run of an earlier pipeline. A step's
    files count under the link's name (`fit/.trk/events...`), its own steps
    likewise. Breadth first, so each run is reached by its shortest path.
    """
    runs_dir = os.path.realpath(os.path.dirname(os.path.abspath(run_dir)))
    seen = {os.path.realpath(run_dir)}
    placed: dict[str, set[str] | None] = {}  # run dir -> what its dependencies placed in it

    def from_dependency(owner: str, rel: str, unknown: bool) -> bool:
        # `unknown` answers for a run whose `deps` attr is unreadable: its step
        # links are not followed, its files still count (they are its own, or
        # copies of a dependency's).
        if owner not in placed:
            placed[owner] = dependency_paths(owner)
        paths = placed[owner]
        if paths is None:
            return unknown
        while rel:  # the path, or a directory above it, was placed
            if rel in paths:
                return True
            rel = os.path.dirname(rel)
        return False

    found = []
    queue = deque([("", run_dir, run_dir, "")])  # (relative path, path, dir of the run it is in, that run's rel)
    while queue:
        rel, path, owner, base = queue.popleft()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            child = os.path.join(rel, e.name) if rel else e.name
            own = child[len(base) + 1:] if base else child  # relative to the run it is in
            try:
                if e.is_symlink():
                    real = os.path.realpath(e.path)
                    is_run = os.path.dirname(real) == runs_dir and os.path.isdir(os.path.join(real, ".trk"))
                    if real in seen or not is_run or from_dependency(owner, own, True):
                        continue
                    seen.add(real)
                    queue.append((child, e.path, e.path, child))
                elif e.is_dir(follow_symlinks=False):
                    queue.append((child, e.path, owner, base))
                elif (is_event_file(e.name) and e.is_file(follow_symlinks=False)  # not a FIFO: reading would block
                      and not from_dependency(owner, own, False)):
                    found.append((child, e.path))
            except OSError:
                continue
    return found


def dependency_paths(run_dir: str) -> set[str] | None:
    """Relative paths of what a run's dependencies placed in it (attr `deps`);
    None when the attr cannot be read."""
    from ..fsutil import load_attr

    try:
        with open(os.path.join(run_dir, ".trk", "attrs", "deps"), encoding="utf-8") as f:
            records = load_attr(f.read())
    except FileNotFoundError:
        return set()
    except Exception:  # unreadable or not JSON/YAML: a corrupt attr
        return None
    if records is None:
        return set()
    if not isinstance(records, list):
        return None
    paths = set()
    for r in records:
        if not isinstance(r, dict):
            continue
        files = r.get("files")
        paths.update(os.path.normpath(p) for p in (files if isinstance(files, list) else []) + [r.get("path")]
                     if isinstance(p, str) and p)
    return paths
