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
