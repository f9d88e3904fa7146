"""Issue 12, items 1, 5, 6 and part of 8: the files a person names, read and written safely.

Only a regular file (or a new path) is read as an earlier draft or replaced by rename; `-`
is standard output; a device, FIFO, folder or a symbolic link to one is refused with one line
and exit code 2. CRLF drafts keep their line endings; huge drafts are refused early.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest
from bundle_factory import write_bundle
from click.testing import CliRunner

from retro.actions import table
from retro.cli.main import cli
from retro.draft.review import read_postmortem
from retro.errors import RetroError
from retro.files import write_atomic


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("hf") / "bundle")


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def _one_line_error(result: object, needle: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output, result.output  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and err.startswith("retro: error: "), err
    assert needle in err, err


# --- item 1: --out on special files ------------------------------------------------------------
#
# The devices are made in tmp_path (a copy of /dev/null: reading it ends at once), never the
# machine's own: if the rule ever broke, a test must not replace /dev/null or read /dev/zero.


@pytest.fixture()
def device(tmp_path: Path) -> Path:
    """A character device like /dev/null, in tmp_path (needs root, as mknod does)."""
    node = tmp_path / "null-device"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    return node


def _still_a_device(node: Path) -> None:
    assert stat.S_ISCHR(os.lstat(node).st_mode), f"{node} was replaced"


def test_generate_refuses_a_device(bundle: Path, device: Path) -> None:
    _one_line_error(
        _run("generate", "--bundle", str(bundle), "--out", str(device)), "character device"
    )
    _still_a_device(device)


def test_generate_refuses_a_symlink_to_a_device_and_keeps_the_link(
    bundle: Path, device: Path, tmp_path: Path
) -> None:
    link = tmp_path / "stdout-like"
    link.symlink_to(device)
    _one_line_error(_run("generate", "--bundle", str(bundle), "--out", str(link)), "symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(device)
    _still_a_device(device)


def test_demo_refuses_a_device(device: Path) -> None:
    _one_line_error(_run("demo", "--out", str(device)), "character device")
    _still_a_device(device)


def test_write_atomic_refuses_what_is_not_a_regular_file(device: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    for path in (device, fifo, tmp_path):
        with pytest.raises(RetroError):
            write_atomic(path, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    _still_a_device(device)


def test_file_actions_write_back_refuses_a_device(device: Path) -> None:
    result = _run("file-actions", str(device), "--project", "OPS", "--dry-run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "character device" in result.stderr
    _still_a_device(device)


def test_generate_refuses_a_fifo_without_opening_it(bundle: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    # Opening a FIFO for reading blocks until a writer comes: run with a watchdog.
    box: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: box.update(r=_run("generate", "--bundle", str(bundle), "--out", str(fifo)))
    )
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # unblock the reader before failing
        with open(fifo, "w"):
            pass
        pytest.fail("generate opened the FIFO")
    _one_line_error(box["r"], "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_generate_refuses_a_directory(bundle: Path, tmp_path: Path) -> None:
    folder = tmp_path / "drafts"
    folder.mkdir()
    _one_line_error(_run("generate", "--bundle", str(bundle), "--out", str(folder)), "directory")
    assert folder.is_dir() and not list(folder.iterdir())


def test_generate_refuses_a_path_under_a_file(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    _one_line_error(
        _run("generate", "--bundle", str(bundle), "--out", str(tmp_path / "afile" / "d.md")),
        "afile",
    )


def test_dash_writes_to_standard_output(bundle: Path) -> None:
    result = _run("generate", "--bundle", str(bundle), "--out", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("---\nincident_id: INC-101")
    assert "## Sources" in result.stdout
    assert "INC-101: " in result.stderr  # the summary goes to stderr, out of the draft's way


def test_a_symlink_to_a_regular_file_is_written_through(bundle: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    link = tmp_path / "link.md"
    assert _run("generate", "--bundle", str(bundle), "--out", str(real)).exit_code == 0
    link.symlink_to(real)
    result = _run("generate", "--bundle", str(bundle), "--out", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text().startswith("---")


def test_output_target_rules(tmp_path: Path) -> None:
    from retro.files import output_target

    assert output_target("-").is_stdout and output_target("/dev/stdout").is_stdout
    assert output_target(tmp_path / "new.md").exists is False
    (tmp_path / "old.md").write_text("x")
    assert output_target(tmp_path / "old.md").exists is True
    with pytest.raises(RetroError, match="process's file descriptor"):
        output_target("/dev/stderr")


# --- item 8: `check` on a non-UTF-8 draft, `show` on a folder ------------------------------------


def test_check_on_a_latin1_draft_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.md"
    path.write_bytes("## Summary\n\nCaf\xe9 down.\n".encode("latin-1"))
    _one_line_error(_run("check", str(path)), "not UTF-8")
    _one_line_error(_run("show", str(path)), "not UTF-8")


def test_show_and_check_refuse_a_folder_and_a_device(tmp_path: Path, device: Path) -> None:
    _one_line_error(_run("show", str(tmp_path)), "directory")
    _one_line_error(_run("check", str(device)), "character device")


# --- item 6: huge drafts -------------------------------------------------------------------------


def test_a_draft_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from retro.draft.review import MAX_DRAFT_BYTES

    path = tmp_path / "huge.md"
    with path.open("wb") as fh:  # sparse: no need to write the bytes
        fh.truncate(MAX_DRAFT_BYTES + 1)
    for command in ("show", "check"):
        _one_line_error(_run(command, str(path)), "MB limit")


def test_a_draft_of_too_many_lines_or_too_much_front_matter_is_refused(tmp_path: Path) -> None:
    many = tmp_path / "many.md"
    many.write_text("## Summary\n" * 50_001)  # the costliest Markdown per byte
    _one_line_error(_run("show", str(many)), "over the limit of 50000")
    front = tmp_path / "front.md"
    front.write_text("---\nnotes: [" + "1, " * 100_000 + "1]\n---\n\n## Summary\n")
    _one_line_error(_run("check", str(front)), "front matter is over 256 KB")


@pytest.mark.parametrize(
    "front",
    [
        "a: &x [1]\nb: *x\n",  # aliases
        "a: " + "[" * 60 + "]" * 60 + "\n",  # deep
        "started: 2024-05-14T25:00:00Z\n",  # PyYAML raises ValueError here
        "services: 5\ntitle: [1, 2]\nincident_id: {a: 1}\n",  # shapes a person may write
    ],
)
def test_odd_front_matter_is_one_line_or_read(tmp_path: Path, front: str) -> None:
    path = tmp_path / "d.md"
    path.write_text("---\n" + front + "---\n\n# X: y\n\n## Summary\n\nText.\n")
    for command in ("show", "check"):
        result = _run(command, str(path))
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output


def test_a_big_draft_under_the_limit_parses_in_linear_time(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.md"
    assert _run("generate", "--bundle", str(bundle), "--out", str(out)).exit_code == 0
    text = out.read_text()
    row = next(line for line in text.splitlines() if re.match(r"\| 2024-05-01 14:0", line))
    end = text.index("\n\n★ marks") + 1  # just after the table's last row
    rows = (row + "\n") * 8000  # about 1 MB of extra table rows
    (tmp_path / "big.md").write_text(text[:end] + rows + text[end:])
    pm = read_postmortem(tmp_path / "big.md")
    assert len(pm.timeline) > 8000


# --- item 5: CRLF --------------------------------------------------------------------------------


def test_crlf_draft_keeps_its_line_endings_through_rerun_show_and_check(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "d.md"
    assert _run("generate", "--bundle", str(bundle), "--out", str(out)).exit_code == 0
    lf = out.read_bytes()
    out.write_bytes(lf.replace(b"\n", b"\r\n"))
    assert _run("generate", "--bundle", str(bundle), "--out", str(out)).exit_code == 0
    again = out.read_bytes()
    assert b"\r\n" in again and again.count(b"\n") == again.count(b"\r\n")
    assert again.replace(b"\r\n", b"\n") == lf  # same draft, same line endings as the file had
    show = _run("show", str(out), "--json")
    assert show.exit_code == 0 and "\\r" not in show.stdout
    check = _run("check", str(out), "--bundle", str(bundle))
    assert check.exit_code in (0, 1) and "\r" not in check.stdout


def test_crlf_draft_keeps_its_line_endings_through_the_action_table_write_back(
    bundle: Path, tmp_path: Path
) -> None:
    out = tmp_path / "d.md"
    assert _run("generate", "--bundle", str(bundle), "--out", str(out)).exit_code == 0
    out.write_bytes(out.read_bytes().replace(b"\n", b"\r\n"))
    pm = table.load(out)
    assert pm.rows, "the sample draft has action items"
    row = pm.rows[0]
    table.update_row(out, row, {"tracking": "OPS-1"}, find=lambda r: r.line == row.line)
    data = out.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b"OPS-1" in data
