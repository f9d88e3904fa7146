"""Reading and writing the files a person names: the one atomic writer every command uses.

The rule for every path a command writes (`--out` of generate and demo, the draft that
file-actions and sync-actions update, eval reports): only a regular file, or a path that does
not exist yet, is ever read as an earlier version or replaced by rename. `-` (or
`/dev/stdout`) means standard output. Anything else, a directory, a device such as /dev/null,
/dev/full or /dev/zero, a FIFO, a socket, or a symbolic link to one of those, is refused with
one line, because renaming over it would replace a system file and reading it would never end.
A symbolic link to a regular file is followed: the file it points to is written, the link stays.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retro.errors import BundleError, ConfigError

STDOUT_NAMES = frozenset({"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
# Pseudo file systems: a "regular file" there is a kernel setting or a process's descriptor,
# never a document.
_SYSTEM_ROOTS = ("/proc/", "/sys/")


class UnsafePathError(ConfigError):
    """A path that is not a regular file was given where retro reads or writes a document."""


@dataclass(frozen=True)
class Target:
    """Where a command's output goes: a file path, or standard output when path is None."""

    path: Path | None
    exists: bool = False  # an existing regular file: the earlier version, which may be read

    @property
    def is_stdout(self) -> bool:
        return self.path is None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse(path: Path | str, what: str, option: str) -> UnsafePathError:
    label = f"{option} {path}" if option else str(path)
    return UnsafePathError(
        f"{label} is {what}, not a regular file",
        hint="give the path of a regular file (or a new one), or `-` for standard output",
    )


def output_target(path: Path | str, *, option: str = "--out") -> Target:
    """Check a path a command will write, by the rule in this module's docstring."""
    if str(path) in STDOUT_NAMES:
        return Target(None)
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        _check_parent(p, option)
        return Target(p, exists=False)
    except OSError as exc:
        raise UnsafePathError(
            f"{option} {p}: cannot be used ({exc.strerror})", hint="check the path"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        if _through_system(p):
            raise _refuse(p, "a symbolic link to a process's file descriptor", option)
        real = os.path.realpath(p)
        try:
            target_mode = os.stat(real).st_mode
        except OSError:
            raise _refuse(p, "a symbolic link to nothing", option) from None
        if stat.S_ISREG(target_mode) and not real.startswith(_SYSTEM_ROOTS):
            return Target(Path(real), exists=True)
        what = "a system file" if stat.S_ISREG(target_mode) else _kind(target_mode)
        raise _refuse(p, f"a symbolic link to {what} ({real})", option)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(p, _kind(st.st_mode), option)
    if str(p.resolve()).startswith(_SYSTEM_ROOTS):
        raise _refuse(p, "a system file", option)
    return Target(p, exists=True)


def _through_system(path: Path) -> bool:
    """True when a chain of symbolic links passes through /proc or /sys (/dev/stderr does)."""
    current = str(path.absolute())
    for _ in range(40):
        try:
            link = os.readlink(current)
        except OSError:
            return False
        current = os.path.join(os.path.dirname(current), link)
        if os.path.normpath(current).startswith(_SYSTEM_ROOTS):
            return True
    return True  # a loop, or a chain too long to be a document's


def _check_parent(path: Path, option: str) -> None:
    """A new path's nearest existing ancestor must be a folder, so mkdir can make the rest."""
    for parent in path.absolute().parents:
        try:
            mode = os.stat(parent).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UnsafePathError(
                f"{option} {path}: cannot be used ({exc.strerror})", hint="check the path"
            ) from None
        if not stat.S_ISDIR(mode):
            raise _refuse(path, f"inside {parent}, which is {_kind(mode)}", option)
        return


def read_text(path: Path | str, *, max_bytes: int, what: str = "file", option: str = "") -> str:
    """A regular file's UTF-8 text with its line endings untouched, or a one-line RetroError.

    Devices, FIFOs and folders are refused before they are opened (reading /dev/zero or a
    FIFO never ends), and so is a file larger than max_bytes.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise BundleError(p, "does not exist", hint=f"pass the path of a {what}") from None
    except OSError as exc:
        raise BundleError(p, f"cannot be read ({exc.strerror})", hint="check the path") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(p, _kind(st.st_mode), option)
    limit = f"the {max_bytes / 1e6:g} MB limit for a {what}"
    if st.st_size > max_bytes:
        raise BundleError(
            p, f"is {st.st_size / 1e6:.1f} MB, over {limit}", hint="see docs/drafts.md (Limits)"
        )
    try:
        with open(p, "rb") as fh:
            payload = fh.read(max_bytes + 1)
    except OSError as exc:
        raise BundleError(p, f"cannot be read ({exc.strerror})", hint="check the path") from None
    if len(payload) > max_bytes:  # it grew since stat
        raise BundleError(p, f"is over {limit}", hint="see docs/drafts.md (Limits)")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(
            p, f"is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None


MAX_YAML_DEPTH = 50


def load_yaml(text: str, path: Path | str, *, what: str = "") -> Any:
    """yaml.safe_load without aliases and nested at most MAX_YAML_DEPTH deep, or a BundleError.

    An alias (`*name`) can make a few lines expand to billions of values once the result is
    copied or printed, and deep nesting exhausts the stack; neither has a use in retro's files.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_safe_loader())  # noqa: S506 - a SafeLoader subclass
    except (ValueError, OverflowError, TypeError) as exc:
        # PyYAML's constructors raise these for a value that looks like a timestamp or number
        # but is not one (hour 25, year 99999), outside YAMLError.
        raise BundleError(
            path,
            f"{what + ' is not' if what else 'not'} valid YAML ({' '.join(str(exc).split())})",
            hint="fix the value, or quote it to make it a string",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        message = f"{what} is not valid YAML" if what else "invalid YAML"
        raise BundleError(
            path, f"{message} ({problem})", record=where, hint="fix the YAML syntax"
        ) from None


_LOADER: Any = None


def _safe_loader() -> Any:
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses aliases and deep nesting, before building anything."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not supported", mark
                )
            self.depth += 1
            try:
                if self.depth > MAX_YAML_DEPTH:
                    mark = self.peek_event().start_mark
                    raise yaml.composer.ComposerError(
                        None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    _LOADER = Loader
    return Loader


def write_output(target: Target, data: str | bytes) -> None:
    """Write to the target: atomically to its file, or to standard output."""
    if target.path is None:
        payload = data.encode("utf-8") if isinstance(data, str) else data
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return
    write_atomic(target.path, data)


def write_atomic(path: Path, data: str | bytes, *, fsync: bool = True) -> None:
    """Write via a temp file in the same folder and rename, so a crash never leaves half a file.

    Only a regular file or a new path is replaced (see the module docstring). An existing file
    keeps its permission bits; a new one gets 0666 less the umask, as `open` would give it.
    Text is written as UTF-8 with its line endings untouched.
    """
    target = output_target(path, option="")
    if target.path is None:
        raise _refuse(path, "standard output", "")
    path = target.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        payload = data.encode("utf-8") if isinstance(data, str) else data
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror})", hint="check the path") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path} ({exc.strerror})", hint="check the path") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
