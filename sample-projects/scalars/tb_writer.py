"""Writes scalars with TensorBoard's own event writer, into logs/."""

import argparse

from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.event_file_writer import EventFileWriter

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=4)
args = p.parse_args()

w = EventFileWriter("logs")
for step in range(args.n):
    value = summary_pb2.Summary.Value(tag="reward", simple_value=float(step * step))
    w.add_event(Event(step=step, wall_time=0.0, summary=summary_pb2.Summary(value=[value])))
w.close()
print(f"wrote {args.n} rewards")
