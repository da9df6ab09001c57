"""Lineage across `requires: operation` (compare columns, runs info, diff,
--tree, deleting an upstream run), on real runs of sample-projects/lineage
and on runs made through the store API where a shape is hard to launch
(two dependencies of the same name, a cycle of hand-edited attrs)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import copy_sample


@pytest.fixture
def chain(trk, tmp_path):
    """Two prep -> train -> evaluate chains: (k=2, lr=0.1) then (k=3, lr=0.2)."""
    proj = copy_sample(tmp_path, "lineage")
    for args in (["prep"], ["train"], ["evaluate"], ["prep", "k=3"], ["train", "lr=0.2"], ["evaluate"]):
        trk("run", *args, "-y", cwd=proj)
    return proj


def compare_json(trk, *args):
    return json.loads(trk("compare", "--json", *args).stdout)


def test_compare_reaches_upstream_flags_and_scalars_through_a_chain(trk, chain):
    rows = compare_json(trk, "-o", "evaluate", "-cc", "=prep.k,=model.lr,model#loss,prep#rows,acc")
    # Scalars are float32 in event files: compared approximately.
    assert [(r["prep.k"], r["model.lr"], r["model#loss"], r["prep#rows"], r["acc"]) for r in rows] == [
        (3, 0.2, pytest.approx(0.1667), 30.0, pytest.approx(0.9166)), (2, 0.1, 0.5, 20.0, 0.75)]
    # The same columns from the Python API, as a list of specs.
    from tracker import api
    from tracker.store import RunStore

    st = RunStore()
    headers, table = api.compare(st.query(), columns=["=prep.k", "prep#rows", "=train.lr"], store=st)
    assert headers == ["run", "prep.k", "prep#rows", "train.lr"]  # the dependency named `model` is `train` too
    assert [r[1:] for r in table] == [[3, 30.0, 0.2], [3, 30.0, None], [None, None, None],
                                      [2, 20.0, 0.1], [2, 20.0, None], [None, None, None]]


def test_deleted_upstream_still_answers_and_shows_as_deleted(trk, chain):
    prep = trk("select", "-o", "prep").stdout.strip()
    p = trk("runs", "rm", "-y", prep[:8])
    assert f"run {prep[:8]} is required by 1 run" in p.stderr and "they keep their copies/links" in p.stderr
    rows = compare_json(trk, "-o", "evaluate", "-cc", "=prep.k,prep#rows")
    assert [(r["prep.k"], r["prep#rows"]) for r in rows] == [(3, 30.0), (2, 20.0)]
    info = trk("runs", "info", "-o", "evaluate").stdout
    assert f"└ operation:prep: {prep[:8]} prep deleted (restore with 'trk runs restore {prep[:8]}') k=3" in info
    trk("runs", "purge", "-y")
    info = trk("runs", "info", "-o", "evaluate").stdout
    assert f"└ operation:prep: {prep[:8]} (missing: purged)" in info
    assert compare_json(trk, "-o", "evaluate", "-cc", "=prep.k")[0]["prep.k"] is None


def test_runs_info_diff_and_tree_show_the_upstream_runs(trk, chain):
    info = trk("runs", "info", "--json", "-o", "evaluate").stdout
    upstream = json.loads(info)["upstream"]
    assert [line.split(":")[0] for line in upstream] == ["model", "└ operation"]  # `name: model` in requires
    assert upstream[0].endswith("train completed lr=0.2") and upstream[1].endswith("prep completed k=3")
    diff = trk("diff", "1", "4").stdout.splitlines()
    assert diff[2:5] == ["upstream flags:", "  model.lr: 0.2 -> 0.1", "  prep.k: 3 -> 2"]
    tree = trk("runs", "--tree", "-s").stdout.splitlines()
    assert [line.split()[1:3] for line in tree[:4]] == [["evaluate", "completed"], ["<-", "train"],
                                                         ["train", "completed"], ["<-", "prep"]]


def make_run(st, op, flags, deps=()):
    run, _ = st.new_run()
    for name, value in (("op", op), ("flags", flags), ("started", 1), ("stopped", 2), ("exit_status", 0),
                        ("deps", [{"name": n, "kind": "operation", "run": r} for n, r in deps])):
        run.write_attr(name, value)
    st.publish(run)
    return run.id


def test_two_upstream_runs_of_one_name_are_ambiguous_and_cycles_end(trk):
    from tracker.store import RunStore

    st = RunStore()
    a = make_run(st, "prep", {"k": 1})
    b = make_run(st, "prep", {"k": 2})
    both = make_run(st, "train", {}, [("operation:prep", a), ("operation:prep", b)])
    p = trk("compare", "-t", both[:8], "-cc", "=prep.k", check=False)
    assert p.returncode == 1
    assert f"'prep' is ambiguous for run {both[:8]}" in p.stderr and a[:8] in p.stderr and b[:8] in p.stderr
    # Hand-edited attrs that make a cycle: the search ends, finding nothing.
    x = make_run(st, "x", {"k": 1})
    y = make_run(st, "y", {}, [("operation:x", x)])
    from tracker.store.run import Run

    Run(x, str(trk.home / "runs" / x)).write_attr("deps", [{"name": "operation:y", "kind": "operation", "run": y}])
    trk("check", "--reindex")
    rows = compare_json(trk, y[:8], x[:8], "-cc", "=x.k,=nothing.k")
    # y requires x; x (by the edit) requires y, which requires x: found at distance 2.
    assert [(r["x.k"], r["nothing.k"]) for r in rows] == [(1, None), (1, None)]
