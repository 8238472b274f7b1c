"""Bad input gets a clear error for that file; the other files are still checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.lint import MAX_FILE_BYTES, check_file, check_paths, check_text

GOOD = "spark.readStream.table('s').groupBy('user_id').count().writeStream.toTable('t')\n"  # SE101, SE201, SE701
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)
)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """A folder with one good file and one of each kind of bad input."""
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text(
        "def f(:\n    pass\nTOKEN = 'dapi0123456789abcdef0123456789abcdef'\n"
    )
    (tmp_path / "image.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "huge.sql").write_text("-- padding\n" * (5 * 1024 * 1024 // 11 + 1))
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    (tmp_path / "loop.yaml").write_text("a: &a [*a]\n")
    (tmp_path / "latin1.sql").write_bytes("-- café\nSELECT 1;\n".encode("latin-1"))
    (tmp_path / "unsafe.yaml").write_text(f"x: !!python/object/apply:os.system ['touch {tmp_path / 'PWNED'}']\n")
    (tmp_path / "runs.py").write_text(f"open({str(tmp_path / 'EXECUTED')!r}, 'w').write('x')\n")
    (tmp_path / "bad.json").write_text('{"a": 1,,}')
    return tmp_path


def by_name(results) -> dict[str, object]:
    return {Path(r.path).name: r for r in results}


def test_each_bad_file_gets_its_own_clear_error_and_the_rest_is_checked(messy: Path):
    before = snapshot(messy)
    results = by_name(check_paths([messy]))
    assert results["good.py"].error is None
    assert {f.rule for f in results["good.py"].findings if f.status == "FAIL"} == {"SE101", "SE201"}
    assert "syntax error at line 1" in results["broken.py"].error
    assert "binary" in results["image.py"].error
    assert "5.0 MB" in results["huge.sql"].error and "2 MB limit" in results["huge.sql"].error
    assert "alias" in results["bomb.yaml"].error
    assert "recursive alias" in results["loop.yaml"].error
    assert "UTF-8" in results["latin1.sql"].error and "0xe9" in results["latin1.sql"].error
    assert "unsupported YAML tag" in results["unsafe.yaml"].error
    assert "invalid JSON at line 1" in results["bad.json"].error
    assert results["runs.py"].error is None
    # Never executes user code, never writes a file.
    assert snapshot(messy) == before
    assert not (messy / "PWNED").exists() and not (messy / "EXECUTED").exists()


def test_unparseable_python_still_gets_the_secret_rules(messy: Path):
    result = check_file(messy / "broken.py")
    assert result.error and "plaintext-secret rules" in result.error
    assert [(f.rule, f.status, f.line) for f in result.findings] == [("SE804", "FAIL", 3)]


def test_size_limit_is_two_megabytes(tmp_path: Path):
    assert MAX_FILE_BYTES == 2 * 1024 * 1024
    under = tmp_path / "under.py"
    under.write_text("#" * (MAX_FILE_BYTES - 10))
    assert check_file(under).error is None
    over = tmp_path / "over.py"
    over.write_text("#" * (MAX_FILE_BYTES + 1))
    assert "over the 2 MB limit" in check_file(over).error


def test_alias_bomb_is_refused_quickly_but_normal_aliases_work():
    result = check_text(BILLION_LAUGHS, "yaml")
    assert result.error and "alias bomb" in result.error
    fine = check_text("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\nlist: [*b, *b]\n", "yaml")
    assert fine.error is None


def test_deep_nesting_is_an_error_not_a_crash():
    assert check_text("x = " + "(" * 300 + "1" + ")" * 300, "python").error
    assert check_text("a: " + "[" * 990 + "]" * 990, "yaml").error
    assert check_text("[" * 5000 + "]" * 5000, "json").error


def test_missing_unsupported_and_empty_files(tmp_path: Path):
    assert check_file(tmp_path / "nope.py").error == "path not found"
    notes = tmp_path / "notes.txt"
    notes.write_text("password: hunter2")
    assert "unsupported file type" in check_file(notes).error
    assert [Path(r.path).name for r in check_paths([tmp_path])] == [], "walking skips unsupported files"
    empty = tmp_path / "empty.py"
    empty.write_text("")
    result = check_file(empty)
    assert result.error is None and result.findings == []


def test_byte_order_mark_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.sql"
    path.write_bytes("\ufeffCREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM s;".encode())
    result = check_file(path)
    assert result.error is None and [f.rule for f in result.findings] == ["SE601"]
