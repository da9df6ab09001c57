import pytest

from tracker import project as projmod
from tracker.errors import OpError, ProjectError
from tracker.execution.command import command_argv
from tracker.project.resolve import resolve, resolve_flags


def write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path


def test_guild_yml_is_read_when_no_trk_yml(tmp_path):
    write(tmp_path, "guild.yml", "- model: m\n  operations:\n    op:\n      exec: echo hi\n")
    p = projmod.load(tmp_path)
    assert p.filename == "guild.yml"
    assert resolve(p, "m:op").fullname == "m:op"


def test_trk_yml_wins_over_guild_yml(tmp_path):
    write(tmp_path, "guild.yml", "- model: g\n  operations: {op: {exec: echo}}\n")
    write(tmp_path, "trk.yml", "op:\n  exec: echo\n")
    p = projmod.load(tmp_path)
    assert p.filename == "trk.yml" and list(p.models) == [""]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    write(tmp_path, "trk.yml", "op:\n  exec: echo\n  flags: [a\n")
    with pytest.raises(ProjectError) as e:
        projmod.load(tmp_path)
    assert str(e.value).startswith("trk.yml, line ")


def test_schema_error_names_line(tmp_path):
    write(tmp_path, "trk.yml", "a:\n  exec: echo\nb:\n  main: x\n  exec: y\n")
    with pytest.raises(ProjectError, match=r"trk.yml, line 4: operation 'b' defines both 'main' and 'exec'"):
        projmod.load(tmp_path)


def test_bad_flag_type_names_line(tmp_path):
    write(tmp_path, "trk.yml", "a:\n  exec: echo\n  flags:\n    x:\n      type: integer\n")
    with pytest.raises(ProjectError, match=r"trk.yml, line 4: .*unknown type 'integer'"):
        projmod.load(tmp_path)


def test_unknown_field_is_a_warning(tmp_path):
    write(tmp_path, "trk.yml", "a:\n  exec: echo\n  flgs: {}\n")
    p = projmod.load(tmp_path)
    assert p.warnings == ["trk.yml, line 3: unknown field 'flgs' in operation 'a' ignored"]


def test_resolve_errors(tmp_path):
    write(tmp_path, "guild.yml", "- model: m3\n  operations:\n    op: {exec: echo}\n")
    p = projmod.load(tmp_path)
    with pytest.raises(OpError) as e:
        resolve(p, "m3:not-defined")
    assert str(e.value) == "operation 'not-defined' is not defined for model 'm3'"
    assert e.value.hint == "Try 'trk operations m3' for a list of available operations."


def test_exec_argv_keeps_values_whole(tmp_path):
    write(tmp_path, "trk.yml", "op:\n  exec: prog ${msg} --n=${n}\n  flags: {msg: x, n: 1}\n"
                                "sh:\n  exec: bash -c \"echo ${msg}\"\n  flags: {msg: x}\n")
    p = projmod.load(tmp_path)
    flags, _ = resolve_flags(resolve(p, "op"), {"msg": "a b; rm -rf /"})
    assert command_argv(resolve(p, "op"), flags) == ["prog", "a b; rm -rf /", "--n=1"]
    flags, _ = resolve_flags(resolve(p, "sh"), {"msg": "a; touch pwned"})
    assert command_argv(resolve(p, "sh"), flags) == ["bash", "-c", "echo 'a; touch pwned'"]


def test_unsupported_flag_message(tmp_path):
    write(tmp_path, "trk.yml", "op:\n  exec: echo\n")
    p = projmod.load(tmp_path)
    with pytest.raises(OpError) as e:
        resolve_flags(resolve(p, "op"), {"msg": "x"}, help_cmd="op")
    assert str(e.value) == "unsupported flag 'msg'"
    assert "--force-flags to skip this check." in e.value.hint


def test_parsed_project_is_cached_and_invalidated(tmp_path):
    import os
    import time

    proj = tmp_path / "p"
    proj.mkdir()
    f = proj / "trk.yml"
    f.write_text("a:\n  exec: echo a\n")
    old = time.time() - 10
    os.utime(f, (old, old))
    cache = tmp_path / "cache"
    assert list(projmod.load(proj, cache_dir=str(cache)).models[""].operations) == ["a"]
    assert len(list((cache / "projects").iterdir())) == 1
    assert list(projmod.load(proj, cache_dir=str(cache)).models[""].operations) == ["a"]
    f.write_text("b:\n  exec: echo b\n")
    assert list(projmod.load(proj, cache_dir=str(cache)).models[""].operations) == ["b"]
    f.write_text("b:\n  exec: echo b\n  flags: [x\n")
    with pytest.raises(ProjectError, match="trk.yml, line"):
        projmod.load(proj, cache_dir=str(cache))


def test_find_cycle_names_the_closing_need_and_the_loop():
    from tracker.project.formats.cycles import find_cycle

    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ("c", ["a", "b", "c", "a"])
    assert find_cycle({"x": [], "a": ["b"], "b": ["b"]}) == ("b", ["b", "b"])
    assert find_cycle({"a": ["b", "c"], "b": [], "c": ["d"], "d": ["c"]}) == ("d", ["c", "d", "c"])
