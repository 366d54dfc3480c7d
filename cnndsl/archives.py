"""Reading NumPy files a user gives (`--weights FILE.npz`, `run --input X.npy`) without trusting them.

Everything is decided from headers before any data is read or decompressed: every archive member is
looked at (numpy's own loader also answers to a bare-named member, so `conv1.weight` and
`conv1.weight.npy` are the same array, and both at once is a defect); pickles are never loaded; an
encrypted, truncated, corrupt or oddly compressed member is a problem naming it; the declared size of
each member must be exactly what its header says, so a zip bomb is refused before it is inflated
(zipfile never inflates past the declared size); the arrays' bytes are bounded by the caller's limit.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from . import safeio

# what numpy's and zipfile's parsers raise on crafted bytes (numpy tokenizes the header: `)10, 144)`)
_BAD = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError, OSError,
        KeyError, TypeError, OverflowError, IndexError, AttributeError, SyntaxError, tokenize.TokenError)


class ArchiveError(ValueError):
    """A file that is not what it should be; `problems` names every defect (by member for an archive)."""

    def __init__(self, path: str, problems: list[str]):
        super().__init__(f"`{path}`: " + "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))
        self.path, self.problems = path, problems


@dataclass(frozen=True)
class Member:
    name: str  # the array's name: the member's, without `.npy`
    member: str  # the name inside the zip
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _header(f) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of an .npy stream; ValueError for anything else."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=10_000)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=10_000)
    else:
        raise ValueError(f"unknown .npy version {version}")
    if dtype.hasobject:
        raise ValueError("it holds Python objects, which cnndsl never loads (no pickles)")
    return tuple(int(d) for d in shape), dtype, f.tell()


def npz_members(path: str, limit: int, why: str = "--max-memory") -> dict[str, Member]:
    """Every array of an .npz, from the headers only; ArchiveError lists every defect. The arrays may hold
    at most `limit` bytes (`why` says where that limit comes from)."""
    safeio.check_readable(path, "weights archive")
    problems: list[str] = []
    out: dict[str, Member] = {}
    try:
        zf = zipfile.ZipFile(path)
    except _BAD as e:
        raise ArchiveError(path, [f"not a NumPy .npz archive ({_short(e)}); write one with numpy.savez or "
                                  "`cnndsl weights -o`"]) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > 100_000:
            raise ArchiveError(path, [f"{len(infos):,} members: not a weights archive"])
        total = 0
        for info in infos:
            m = info.filename
            if info.is_dir():
                continue
            name = m[:-4] if m.endswith(".npy") else m
            if info.flag_bits & 0x1:
                problems.append(f"`{m}`: encrypted; give an unencrypted archive")
                continue
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                problems.append(f"`{m}`: compressed with method {info.compress_type}; numpy.savez and "
                                "numpy.savez_compressed use stored or deflated members")
                continue
            if name in out:
                problems.append(f"`{m}`: `{name}` is in the archive twice (as `{out[name].member}` too)")
                continue
            try:
                with zf.open(info) as f:
                    shape, dtype, head = _header(f)
            except _BAD as e:
                problems.append(f"`{m}`: not a NumPy array ({_short(e)})")
                continue
            member = Member(name, m, shape, dtype)
            if info.file_size != head + member.nbytes:
                problems.append(f"`{m}`: the archive says {info.file_size:,} bytes, but its header says "
                                f"{head + member.nbytes:,} (a damaged or crafted archive)")
                continue
            total += member.nbytes
            out[name] = member
        if total > limit:
            problems.append(f"the arrays hold {safeio.size_text(total)}, more than the limit of "
                            f"{safeio.size_text(limit)} ({why})")
    if problems:
        raise ArchiveError(path, problems)
    return out


def read_member(zf: zipfile.ZipFile, m: Member) -> np.ndarray:
    """The array of one member checked by npz_members; ArchiveError naming it if its data is damaged."""
    try:
        with zf.open(m.member) as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
    except _BAD as e:
        raise ArchiveError(zf.filename or "", [f"`{m.member}`: cannot read its data ({_short(e)})"]) from None
    if arr.shape != m.shape:  # pragma: no cover - the header was read twice from the same bytes
        raise ArchiveError(zf.filename or "", [f"`{m.member}`: changed while it was read"])
    return arr


def npy_header(path: str, limit: int) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of an .npy file, checked against the file's size and `limit` bytes; nothing else read."""
    st = safeio.check_readable(path, "NumPy .npy array")
    try:
        with open(path, "rb") as f:
            shape, dtype, head = _header(f)
    except _BAD as e:
        if zipfile.is_zipfile(path):
            raise ArchiveError(path, ["it is an .npz archive; give one array as .npy"]) from None
        raise ArchiveError(path, [f"not a NumPy .npy array ({_short(e)})"]) from None
    n = math.prod(shape) * dtype.itemsize
    if st.st_size < head + n:
        raise ArchiveError(path, [f"truncated: its header says {head + n:,} bytes, the file has {st.st_size:,}"])
    if n > limit:
        raise ArchiveError(path, [f"the array holds {safeio.size_text(n)}, more than the limit of "
                                  f"{safeio.size_text(limit)} (--max-memory)"])
    return shape, dtype


def load_npy(path: str, limit: int) -> np.ndarray:
    npy_header(path, limit)
    try:
        return np.load(path, allow_pickle=False)
    except _BAD as e:
        raise ArchiveError(path, [f"not a NumPy .npy array ({_short(e)})"]) from None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def nonfinite(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "fc" and not bool(np.isfinite(arr).all())


__all__ = ["ArchiveError", "Member", "load_npy", "nonfinite", "npy_header", "npz_members", "read_member"]
