"""Event files: what trk writes, TensorBoard reads; what others write, trk reads."""

import math
import os
import struct

import pytest

from tracker.metrics.events import EventWriter, read_scalars


def write_sample(dir, n=50):
    w = EventWriter(str(dir))
    for step in range(n):
        w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_scalar("acc", step / n, step)
    w.close()
    return w.path


def test_tensorboard_reads_what_trk_writes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    write_sample(tmp_path)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["acc", "loss"]
    events = acc.Scalars("loss")
    assert [e.step for e in events] == list(range(50))
    assert events[3].value == pytest.approx(0.25)


def test_trk_reads_what_tensorboard_writes(tmp_path):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(tmp_path))
    for step in range(5):
        simple = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="simple", simple_value=step * 2.0)])
        w.add_event(Event(step=step, wall_time=1.0, summary=simple))
        # TF2 / PyTorch style: a 0-d float tensor with the scalars plugin.
        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        tensor = TensorProto(dtype=1, float_val=[step * 3.0])
        tv = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="tensor", tensor=tensor, metadata=meta)])
        w.add_event(Event(step=step, wall_time=1.0, summary=tv))
    w.close()
    (path,) = [p for p in tmp_path.iterdir()]
    res = read_scalars(str(path))
    assert res.warning is None and not res.truncated
    assert [(t, s, v) for t, s, v in res.scalars if t == "simple"] == [("simple", s, s * 2.0) for s in range(5)]
    assert [(t, s, v) for t, s, v in res.scalars if t == "tensor"] == [("tensor", s, s * 3.0) for s in range(5)]


def test_incremental_read_from_offset(tmp_path):
    path = write_sample(tmp_path, 10)
    first = read_scalars(path)
    assert len(first.scalars) == 20
    assert first.end_offset == os.path.getsize(path)
    assert read_scalars(path, first.end_offset).scalars == []


def test_truncated_file_yields_scalars_before_the_cut(tmp_path):
    path = write_sample(tmp_path, 10)
    data = open(path, "rb").read()
    for cut in (len(data) - 3, len(data) - 20, len(data) - 30):
        open(path, "wb").write(data[:cut])
        res = read_scalars(path)
        assert res.truncated and res.warning is None
        assert 16 <= len(res.scalars) < 20
        assert res.scalars == read_scalars(path).scalars


def test_corrupt_record_gives_a_warning_and_earlier_scalars(tmp_path):
    path = write_sample(tmp_path, 10)
    data = bytearray(open(path, "rb").read())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    open(path, "wb").write(bytes(data))
    res = read_scalars(path)
    assert res.warning and "corrupt" in res.warning and path in res.warning
    assert 0 < len(res.scalars) < 20


def test_every_cut_point_keeps_earlier_scalars_and_resumes(tmp_path):
    """A file cut anywhere in its last two records (header, data or footer)
    gives the scalars before the cut; reading on from `end_offset` once the
    file is whole again gives exactly the rest."""
    path = write_sample(tmp_path, 10)
    data = open(path, "rb").read()
    whole = read_scalars(path).scalars
    assert len(whole) == 20
    offsets = record_offsets(data)
    for cut in range(offsets[-2], len(data)):
        open(path, "wb").write(data[:cut])
        res = read_scalars(path)
        assert res.warning is None and res.truncated == (cut not in offsets)
        assert res.end_offset == max(o for o in offsets if o <= cut)
        assert res.scalars == whole[:len(res.scalars)] and len(res.scalars) >= 18
        open(path, "wb").write(data)
        rest = read_scalars(path, res.end_offset)
        assert rest.warning is None and not rest.truncated
        assert res.scalars + rest.scalars == whole


def test_values_round_trip_as_float32(tmp_path):
    w = EventWriter(str(tmp_path))
    values = [0.0, -1.5, 3.25e-8, 1e30, float("inf"), float("-inf")]
    for i, v in enumerate(values):
        w.add_scalar("v", v, i * 1000)  # multi-byte varint steps
    w.add_scalar("big-step", 1.0, 2**40)
    w.close()
    got = read_scalars(w.path).scalars
    assert [s for _, s, _ in got] == [i * 1000 for i in range(len(values))] + [2**40]
    assert [v for _, _, v in got[:-1]] == [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]
    nan = EventWriter(str(tmp_path))
    nan.add_scalar("n", float("nan"), 0)
    nan.close()
    assert math.isnan(read_scalars(nan.path).scalars[0][2])


def test_tensor_scalars_of_every_encoding(tmp_path):
    """double_val, tensor_content (float and double), no plugin name; tensors
    of other plugins and of more than one value are not scalars."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    def plugin(name):
        return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=name))

    values = [
        ("double_val", TensorProto(dtype=2, double_val=[0.125]), plugin("scalars")),
        ("f32_content", TensorProto(dtype=1, tensor_content=struct.pack("<f", 2.5)), plugin("scalars")),
        ("f64_content", TensorProto(dtype=2, tensor_content=struct.pack("<d", -7.75)), None),
        ("text", TensorProto(dtype=7, string_val=[b"hello"]), plugin("text")),
        ("histo_like", TensorProto(dtype=1, float_val=[1.0]), plugin("histograms")),
        ("vector", TensorProto(dtype=1, float_val=[1.0, 2.0],
                               tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=2)])), plugin("scalars")),
    ]
    w = EventFileWriter(str(tmp_path))
    for tag, tensor, meta in values:
        v = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if meta is not None:
            v.metadata.CopyFrom(meta)
        w.add_event(Event(step=7, wall_time=1.0, summary=summary_pb2.Summary(value=[v])))
    w.close()
    (path,) = list(tmp_path.iterdir())
    res = read_scalars(str(path))
    assert res.warning is None
    assert res.scalars == [("double_val", 7, 0.125), ("f32_content", 7, 2.5), ("f64_content", 7, -7.75)]


def test_corrupt_header_and_garbage_give_warnings_with_offsets(tmp_path):
    path = write_sample(tmp_path, 10)
    data = open(path, "rb").read()
    whole = read_scalars(path)
    # A flipped bit in the length of the 6th record: its header checksum fails.
    offsets = record_offsets(data)
    bad = bytearray(data)
    bad[offsets[6]] ^= 0x01
    open(path, "wb").write(bytes(bad))
    res = read_scalars(path)
    assert res.scalars == whole.scalars[:5]  # records 1-5 (after file_version) hold one scalar each
    assert f"byte {offsets[6]}" in res.warning and path in res.warning
    assert res.end_offset == offsets[6]
    # Garbage after valid records (not a short tail): a warning, never an exception.
    open(path, "wb").write(data + os.urandom(64))
    res = read_scalars(path)
    assert res.scalars == whole.scalars
    assert res.warning and f"byte {len(data)}" in res.warning


def record_offsets(data):
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += 12 + length + 4
    return offsets


def test_missing_file_is_a_warning(tmp_path):
    res = read_scalars(str(tmp_path / "events.out.tfevents.nope"))
    assert res.scalars == [] and res.warning and "nope" in res.warning


def test_tensorboard_sees_flushed_data_of_an_open_writer(tmp_path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    w = EventWriter(str(tmp_path))
    w.add_scalar("loss", 0.5, 1)
    w.flush()
    events = list(EventFileLoader(w.path).Load())
    assert events[0].file_version == "brain.Event:2"
    # The loader migrates simple_value to a 0-d float tensor, as for TF2 scalars.
    got = [(v.tag, e.step, v.tensor.float_val[0]) for e in events[1:] for v in e.summary.value]
    assert got == [("loss", 1, 0.5)]
    w.close()
