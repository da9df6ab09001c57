"""Event files: what trk writes, TensorBoard reads; what others write, trk reads."""

import os

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
