"""The status page's publish on a real file system: the generation is on disk before DIR names it,
unchanged files are hard links to the previous generation's, and only a generation of ours is linked from."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import TemplateNotFound

from netwatch.errors import UsageError
from netwatch.statuspage.publish import publish

FIRST, SECOND, THIRD = "20261122T100000Z-1", "20261122T100500Z-2", "20261122T101000Z-3"


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_new_generation_is_synced_whole_before_dir_names_it(tmp_path: Path) -> None:
    out = tmp_path / "www"
    publish(out, [("index.html", b"one")], FIRST, sync=lambda: None)
    seen: list[tuple[str, dict[str, bytes]]] = []

    def sync() -> None:
        seen.append((out.resolve().name, files_under(tmp_path / f".www.{SECOND}")))

    files = [("index.html", b"two"), ("badges/hosts/a.svg", b"<svg>a</svg>" * 1000)]
    publish(out, files, SECOND, sync=sync)

    assert seen == [(f".www.{FIRST}", dict(files))]
    assert out.resolve().name == f".www.{SECOND}" and files_under(out.resolve()) == dict(files)


def test_an_unchanged_file_is_a_hard_link_to_the_previous_one_and_a_changed_one_is_new(tmp_path: Path) -> None:
    out = tmp_path / "www"
    first = publish(out, [("badges/a.svg", b"same"), ("badges/b.svg", b"old!"), ("index.html", b"1")], FIRST,
                    sync=lambda: None)
    old = first.generation

    second = publish(out, [("badges/a.svg", b"same"), ("badges/b.svg", b"new!"), ("index.html", b"12")], SECOND,
                     sync=lambda: None)

    new = second.generation
    assert (new / "badges/a.svg").stat().st_ino == (old / "badges/a.svg").stat().st_ino
    assert (new / "badges/b.svg").stat().st_ino != (old / "badges/b.svg").stat().st_ino
    assert (new / "index.html").stat().st_ino != (old / "index.html").stat().st_ino
    assert files_under(new) == {"badges/a.svg": b"same", "badges/b.svg": b"new!", "index.html": b"12"}
    assert files_under(old) == {"badges/a.svg": b"same", "badges/b.svg": b"old!", "index.html": b"1"}
    assert (second.files, second.reused) == (3, 1)


def test_removing_the_oldest_generation_leaves_the_files_linked_from_it_whole(tmp_path: Path) -> None:
    out = tmp_path / "www"
    page = [("badges/a.svg", b"<svg>a</svg>" * 500), ("index.html", b"x")]
    for stamp in (FIRST, SECOND, THIRD):
        published = publish(out, page, stamp, sync=lambda: None)

    assert sorted(p.name for p in tmp_path.iterdir()) == [f".www.{SECOND}", f".www.{THIRD}", "www"]
    assert files_under(out.resolve()) == dict(page) and published.reused == 2
    assert (out.resolve() / "badges/a.svg").stat().st_nlink == 2


def test_nothing_is_linked_from_a_folder_dir_points_to_that_netwatch_did_not_write(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_bytes(b"same")
    out = tmp_path / "www"
    os.symlink(elsewhere, out)

    published = publish(out, [("index.html", b"same")], FIRST, sync=lambda: None)

    assert published.reused == 0
    assert (published.generation / "index.html").stat().st_ino != (elsewhere / "index.html").stat().st_ino
    assert (elsewhere / "index.html").read_bytes() == b"same"


def test_a_previous_file_replaced_by_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "www"
    first = publish(out, [("index.html", b"page")], FIRST, sync=lambda: None)
    target = tmp_path / "target.html"
    target.write_bytes(b"page")
    (first.generation / "index.html").unlink()
    os.symlink(target, first.generation / "index.html")

    second = publish(out, [("index.html", b"page")], SECOND, sync=lambda: None)

    written = second.generation / "index.html"
    assert second.reused == 0 and not written.is_symlink() and written.read_bytes() == b"page"


def test_a_renderer_error_is_not_reported_as_a_file_that_cannot_be_written(tmp_path: Path) -> None:
    """Jinja2's TemplateNotFound is an OSError without an errno: a broken install, not DIR's fault."""
    def files() -> Iterator[tuple[str, bytes]]:
        yield "index.html", b"one"
        raise TemplateNotFound("badge.svg")

    out = tmp_path / "www"
    with pytest.raises(TemplateNotFound):
        publish(out, files(), FIRST, sync=lambda: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the half-written generation is removed"


def test_a_file_system_error_is_one_line_naming_dir(tmp_path: Path) -> None:
    out = tmp_path / "www"
    publish(out, [("index.html", b"one")], FIRST, sync=lambda: None)
    with pytest.raises(UsageError) as err:
        publish(out, [("index.html", b"two"), ("index.html", b"again")], SECOND, sync=lambda: None)
    assert err.value.message.startswith(f"--out {out}: cannot write ") and "File exists" in err.value.message
    assert os.readlink(out) == f".www.{FIRST}", "DIR still names the page it named"
