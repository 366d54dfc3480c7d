"""Safe file and process handling: the one place where cnndsl touches a path a user named or a child
process it starts. Every command reads, writes and spawns through here, so the bounds hold for all of them.

Reading (`read_bytes`, `check_readable`): the path must be a regular file (a folder, a FIFO, a device or a
socket is refused before it is opened, so nothing blocks on a pipe or reads /dev/zero forever); its size is
checked before reading; a symlink loop, a name that is too long or a path through a file is a one-line
`FileProblem`, never a traceback.

Writing (`output_target`, `temp_dir`, `publish`, `write_bytes`): an output is never one of the inputs; a
symlink is followed (its target is replaced, the link stays); a character device or a FIFO is written
through (`-o /dev/null` writes to /dev/null, never replaces it); a block device or socket is refused; a
regular file is written to a temporary in the same folder, then renamed over it. Temporaries are named
`.cnndsl-tmp-<pid>-...`: they are removed when the command ends, on SIGTERM/SIGHUP (`install_signal_handlers`),
and a leftover of a run that was killed (SIGKILL) is found and removed by the next run writing to that
folder (`notices` says so).

Children (`run_child`): a time bound, and on Linux they die with cnndsl (PR_SET_PDEATHSIG); a signal that
ends cnndsl kills them too.

This module never prints: `notices` collects what the command line should tell the user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .records import record

MAX_SPEC_BYTES = 16 << 20  # a spec or an imported file: the largest generated benchmark spec is about 2 MB
MAX_ONNX_BYTES = 2**31  # an .onnx file read by `run`/`bench` (its weights may be external, beside it)
TMP_PREFIX = ".cnndsl-tmp-"

notices: list[str] = []  # things the user should hear about (a removed leftover), printed by the CLI
_temps: set[str] = set()  # temporaries of this process: removed on exit and on a fatal signal
_children: set[subprocess.Popen] = set()


class FileProblem(Exception):
    """A path cnndsl cannot use as asked; the message is one line, naming the path and why."""


def _why(e: OSError) -> str:
    return {
        errno.ENOENT: "no such file",
        errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EACCES: "permission denied",
        errno.EISDIR: "it is a folder",
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is read-only",
    }.get(e.errno, e.strerror or str(e))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_text(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} bytes"


def check_readable(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> os.stat_result:
    """The stat of a regular file that may be read; FileProblem for anything else (nothing is opened)."""
    if "\0" in os.fspath(path):
        raise FileProblem(f"cannot read `{os.fspath(path)!r}`: the name holds a NUL character")
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:
        raise FileProblem(f"cannot read `{path}`: {_why(e) if isinstance(e, OSError) else e}") from None
    kind = _kind(st.st_mode)
    if kind:
        raise FileProblem(f"cannot read `{path}`: it is {kind}, not a {what}")
    if limit is not None and st.st_size > limit:
        raise FileProblem(f"cannot read `{path}`: it is {size_text(st.st_size)}, more than a {what} may be "
                          f"({size_text(limit)})")
    return st


def read_bytes(path: str | os.PathLike, limit: int = MAX_SPEC_BYTES, what: str = "spec") -> bytes:
    """The bytes of a regular file of at most `limit` bytes, checked before and while reading."""
    check_readable(path, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise FileProblem(f"cannot read `{path}`: {_why(e)}") from None
    with os.fdopen(fd, "rb") as f:
        kind = _kind(os.fstat(fd).st_mode)  # swapped for something else since the check
        if kind:
            raise FileProblem(f"cannot read `{path}`: it is {kind}, not a {what}")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise FileProblem(f"cannot read `{path}`: {_why(e)}") from None
    if len(data) > limit:
        raise FileProblem(f"cannot read `{path}`: it is more than a {what} may be ({size_text(limit)})")
    return data


# --- outputs -------------------------------------------------------------------------------------------


@record
class Target:
    """Where an output goes: `path` (a symlink resolved) and whether it is a stream written through."""

    path: Path
    stream: bool = False  # a character device or a FIFO: written through, never replaced


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def output_target(out: str | os.PathLike, inputs=(), what: str = "output") -> Target:
    """Check that `out` may be written, before any work is done; FileProblem says why not.

    `inputs` are the files the command reads (the spec, a weights file): an output is never one of them.
    """
    name = os.fspath(out)
    if "\0" in name:
        raise FileProblem(f"cannot write `{name!r}`: the name holds a NUL character")
    path = Path(name)
    try:
        is_link = path.is_symlink()
        real = Path(os.path.realpath(name, strict=False)) if is_link else path
        st = os.stat(real)
    except FileNotFoundError:
        st = None  # a new file (or a dangling link's target)
    except OSError as e:
        raise FileProblem(f"cannot write `{name}`: {_why(e)}") from None
    except RuntimeError:  # realpath of a symlink loop on older Pythons
        raise FileProblem(f"cannot write `{name}`: too many levels of symbolic links (a symlink loop?)") from None
    if is_link and st is None and not real.parent.is_dir():
        raise FileProblem(f"cannot write `{name}`: it is a symbolic link to `{real}`, whose folder does not exist")
    for i in inputs:
        try:
            if st is not None and _same(st, os.stat(i)):
                raise FileProblem(f"cannot write `{name}`: it is the input `{i}`; cnndsl never writes over what it "
                                  f"reads (choose another output name with -o)")
        except OSError:
            pass
    if st is not None:
        kind = _kind(st.st_mode)
        if kind == "a folder":
            raise FileProblem(f"cannot write `{name}`: it is a folder")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            return Target(real, stream=True)
        if kind:
            raise FileProblem(f"cannot write `{name}`: it is {kind}; cnndsl writes regular files, character "
                              f"devices and pipes only")
    folder = real.parent if str(real.parent) else Path(".")
    if not folder.is_dir():
        raise FileProblem(f"cannot write `{name}`: the folder `{folder}` does not exist")
    return Target(real)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its files alone
    return True


def sweep(folder: str | os.PathLike) -> list[str]:
    """Remove the temporaries that killed cnndsl runs left in `folder`; the names removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for n in names:
        if not n.startswith(TMP_PREFIX):
            continue
        pid = n[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        p = os.path.join(folder, n)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        except OSError:
            continue
        removed.append(p)
        notices.append(f"removed `{p}`, a temporary left by a cnndsl run that was killed")
    return removed


def _remove(p: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            os.unlink(p)


@contextlib.contextmanager
def temp_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder inside `folder` (same file system, so renames are atomic), removed after."""
    folder = os.fspath(folder) or "."
    sweep(folder)
    try:
        d = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=folder)
    except OSError as e:
        raise FileProblem(f"cannot write in `{folder}`: {_why(e)}") from None
    _temps.add(d)
    try:
        yield Path(d)
    finally:
        _remove(d)
        _temps.discard(d)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | os.PathLike, target: Target | str | os.PathLike) -> None:
    """Put a finished temporary file in place: renamed over a regular file, copied into a stream."""
    t = target if isinstance(target, Target) else Target(Path(target))
    if not t.stream:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp/mkdtemp make private files; give the usual permissions
        os.replace(tmp, t.path)
        return
    try:  # a FIFO with no reader would block: refuse instead
        fd = os.open(t.path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise FileProblem(f"cannot write `{t.path}`: it is a named pipe with no reader") from None
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as out, open(tmp, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)


def write_bytes(target: Target | str | os.PathLike, data: bytes) -> None:
    """Write `data` to an output atomically (a regular file) or through (a device or a pipe)."""
    t = target if isinstance(target, Target) else Target(Path(target))
    with temp_dir(t.path.parent) as d:
        tmp = d / "out"
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
        publish(tmp, t)


# --- children and signals ----------------------------------------------------------------------------


class ChildTimeout(Exception):
    """A child process ran past its time bound and was killed."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001, S110 - best effort: not Linux
        pass


def run_child(cmd: list[str], data: bytes, timeout: float) -> subprocess.CompletedProcess:
    """Run `cmd` with `data` on its stdin; killed after `timeout` seconds (ChildTimeout) or with cnndsl."""
    pre = _die_with_parent if sys.platform.startswith("linux") else None
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=pre)  # noqa: PLW1509 - only sets the death signal
    _children.add(p)
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise ChildTimeout(f"`{cmd[0]}` took more than {timeout:g} s") from None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _children.discard(p)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def cleanup() -> None:
    """Kill our children and remove our temporaries (at exit, or on a fatal signal)."""
    for p in list(_children):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            p.kill()
            p.wait(timeout=2)  # reaped, not left a zombie
    for d in list(_temps):
        _remove(d)
    _temps.clear()


def _on_signal(signum, frame) -> None:
    cleanup()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"cnndsl: stopped by signal {signal.Signals(signum).name}; nothing was written\n")
        sys.stderr.flush()
    os._exit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP end cnndsl cleanly (children killed, temporaries removed); SIGINT raises
    KeyboardInterrupt as usual, and the `finally` blocks around every temporary do the same."""
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread
                signal.signal(sig, _on_signal)


def as_target(out: Target | str | os.PathLike) -> Target:
    """A Target as it is (checked by `output_target`), or a plain path taken as a regular file."""
    return out if isinstance(out, Target) else Target(Path(out))


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """End the process (exit 1, children killed, temporaries removed) if the body runs past `seconds`.

    For work that cannot be interrupted from Python (an onnxruntime run of a model that loops forever).
    """
    import threading

    def expire() -> None:
        cleanup()
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"cnndsl: error: {what} took more than {seconds:g} s and was stopped; allow more time "
                             f"with --timeout\n")
            sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
