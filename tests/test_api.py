"""The library does what the CLI does: `import tracker`."""

import tracker
from tracker.errors import OpError

import pytest


def test_run_and_list_through_the_api(project, trk_home):
    result = tracker.run("echo", {"msg": "from api"}, project_dir=str(project))
    assert result.exit_code == 0 and not result.reused
    run = result.run
    assert run.status == "completed" and run.flags == {"msg": "from api", "n": 1}
    assert open(run.output_path).read() == "[from api]\n[1]\n"
    listed = tracker.runs()
    assert [r.id for r in listed] == [run.id]
    assert tracker.runs(operations=["echo"], statuses=["completed"])[0].id == run.id
    assert tracker.runs(statuses=["error"]) == []


def test_api_errors_are_typed(project):
    with pytest.raises(OpError, match="unsupported flag 'nope'"):
        tracker.run("echo", {"nope": 1}, project_dir=str(project))


def test_store_delete_restore_purge(project, trk_home):
    run = tracker.run("echo", project_dir=str(project)).run
    store = tracker.RunStore()
    store.delete([run])
    assert tracker.runs() == []
    (deleted,) = store.list(deleted=True)
    store.restore([deleted])
    assert [r.id for r in tracker.runs()] == [run.id]
    store.delete(tracker.runs())
    store.purge(store.list(deleted=True))
    assert store.list(deleted=True) == [] and not (trk_home / "trash" / "runs" / run.id).exists()


def test_runs_take_the_cli_filters_and_give_typed_fields(tmp_path, trk_home):
    import datetime
    import time

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("train:\n  exec: python train.py\n  flags:\n    lr: 0.1\n    epochs: 2\n"
                                  "other:\n  exec: python -c pass\n")
    (proj / "train.py").write_text("import sys\nfor step in (1, 2):\n    print(f'step: {step}')\n"
                                   "    print(f'loss: {0.5 / step}')\n")
    before = time.time()
    a = tracker.run("train", {"lr": 0.01}, project_dir=str(proj), label="small", tags=["exp"]).run
    tracker.run("other", project_dir=str(proj))
    listed = tracker.runs(operation="train")
    assert [r.id for r in listed] == [a.id]
    r = listed[0]
    assert (r.operation, r.status, r.label, r.tags, r.exit_status) == ("train", "completed", "small", ["exp"], 0)
    assert r.flags == {"lr": 0.01, "epochs": 2} and type(r.flags["epochs"]) is int
    assert isinstance(r.started, datetime.datetime) and r.started.tzinfo is not None
    assert r.started.timestamp() >= before - 1 and isinstance(r.duration, float) and r.duration >= 0
    assert r.scalars["loss"].last == 0.25 and r.scalars["loss"].min == 0.25 and r.scalars["loss"].first == 0.5
    assert [x.id for x in tracker.runs(label="small", tag="exp", status="completed")] == [a.id]
    assert tracker.runs(status=["error", "terminated"]) == []
    assert len(tracker.runs(started_after=before - 1)) == 2 and tracker.runs(started_after=time.time() + 5) == []
    assert [x.id for x in tracker.runs("2")] == [a.id]  # run specs as on the command line
    assert r.to_dict()["scalars"] == {"loss": 0.25} and r.to_dict()["started"].startswith(str(r.started.year))
    # Every logged step, with its wall time; the API's other calls take RunViews.
    hist = tracker.history(r)
    assert [(t, s, v) for t, s, _, v in hist] == [("loss", 1, 0.5), ("loss", 2, 0.25)]
    assert all(isinstance(w, float) and w >= before - 1 for _, _, w, _ in hist)
    assert tracker.history(r, tag="nothing") == []
    headers, rows = tracker.compare(runs=listed, columns=["=lr", "loss", "min loss"])
    assert headers == ["run", "lr", "loss", "min loss"] and rows == [[a.short_id, 0.01, 0.25, 0.25]]
    assert "scalars:" in "\n".join(tracker.diff(tracker.runs()[1], r))
    frame = tracker.compare_frame(listed, columns="=lr,loss")
    assert list(frame.columns) == ["run", "lr", "loss"] and frame["loss"].tolist() == [0.25]
    hframe = tracker.history_frame(listed, tag="loss")
    assert list(hframe.columns) == ["run", "tag", "step", "wall_time", "value"]
    assert hframe["value"].tolist() == [0.5, 0.25] and set(hframe["run"]) == {a.id}
    tracker.RunStore().delete(tracker.runs(operation="other"))
    assert [x.operation for x in tracker.runs()] == ["train"]


def test_pandas_is_imported_only_by_the_frame_calls():
    import subprocess
    import sys

    code = "import sys, tracker; tracker.runs(); tracker.compare(); print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
