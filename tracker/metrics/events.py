"""TensorBoard event files, written and read fast.

Records use TFRecord framing (length, masked CRC-32C, data, masked CRC-32C)
with checksums from the `crc32c` C extension. Scalar events are encoded by
hand (no protobuf needed to write); reading decodes with tensorboard's
`event_pb2` and verifies every checksum.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from itertools import count

_COUNTER = count()
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


def _crc32c():
    import crc32c

    return crc32c.crc32c


def masked_crc(data: bytes, _crc=None) -> int:
    crc = (_crc or _crc32c())(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_F32_MAX = 3.4028234663852886e38


def _f32(value: float) -> bytes:
    """float32 bytes; values beyond its range become +/-inf, as TF casts them."""
    try:
        return _F32.pack(value)
    except OverflowError:
        return _F32.pack(math.inf if value > 0 else -math.inf)


def encode_scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """An Event{wall_time, step, summary{value{tag, simple_value}}} message."""
    tb = tag.encode("utf-8")
    val = b"\x0a" + _varint(len(tb)) + tb + b"\x15" + _f32(value)
    summary = b"\x0a" + _varint(len(val)) + val
    return b"\x09" + _F64.pack(wall_time) + b"\x10" + _varint(step) + b"\x2a" + _varint(len(summary)) + summary


def encode_file_version(wall_time: float) -> bytes:
    v = b"brain.Event:2"
    return b"\x09" + _F64.pack(wall_time) + b"\x1a" + _varint(len(v)) + v


class EventWriter:
    """Appends scalar events to a new `events.out.tfevents.*` file in `dir`."""

    def __init__(self, dir: str, filename_suffix: str = ""):
        os.makedirs(dir, exist_ok=True)
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
        self._append(encode_scalar_event(tag, float(value), int(step), wall_time or time.time()))

    def add_scalars(self, scalars, wall_time: float | None = None) -> None:
        wall = wall_time or time.time()
        for tag, value, step in scalars:
            self._append(encode_scalar_event(tag, float(value), int(step), wall))

    def flush(self) -> None:
        if self._buf:
            self._f.write(b"".join(self._buf))
            self._buf.clear()
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()


@dataclass
class ReadResult:
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


def read_scalars(path: str, offset: int = 0) -> ReadResult:
    """Read the scalars of complete records from `offset`; never raises on bad data.

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
        for v in ev.summary.value:
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                out.append((v.tag, step, v.simple_value))
            elif kind == "tensor":
                plugin = v.metadata.plugin_data.plugin_name
                if plugin and plugin != "scalars":
                    continue
                x = _tensor_scalar(v.tensor)
                if x is not None:
                    out.append((v.tag, step, float(x)))
    result.end_offset = offset + pos
    return result


def is_event_file(name: str) -> bool:
    return name.startswith("events.out.tfevents.") or ".tfevents." in name
