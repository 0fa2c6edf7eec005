"""Reading a user's image source: a folder, or an archive extracted safely, walked in a fixed order.

Every file under the source becomes one SourceFile: either a candidate image
with its class (and split, when the source has split folders) or a refusal
with its reason, so the report can account for all of them. Archives are
checked member by member before anything is written, and extracted into a
temporary folder that disappears afterwards, whatever happens.
"""

import os
import re
import shutil
import stat
import tarfile
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tasks.common.errors import UserError

SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
SYSTEM_FOLDERS = {"__MACOSX"}  # macOS zips carry resource forks there
CHUNK = 1 << 20
CLASS_NAME_BYTES = 200  # well under the 255 bytes a file name may take


@dataclass(frozen=True)
class SourceFile:
    name: str  # path inside the source, '/'-separated: what the report shows
    path: Path
    label: str | None = None  # filesystem-safe class name
    split: str | None = None  # from a split folder, if any
    reason: str | None = None  # set when the file is refused before decoding
    detail: str | None = None


def safe_class_name(folder: str) -> str:
    """A folder name usable as a class folder anywhere: letters, digits, '_', '.', '-'; no leading dot.

    At most CLASS_NAME_BYTES bytes: NFKC can lengthen a name (one character can become 18), past
    the 255 bytes a file system allows in a name.
    """
    safe = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFKC", folder)).lstrip(".-")
    safe = safe.encode()[:CLASS_NAME_BYTES].decode(errors="ignore")
    return safe or "class_" + folder.encode().hex()[:16]


def shown(parts: tuple[str, ...]) -> str:
    """A path as the report shows it, '/'-separated; bytes that are no UTF-8 and control characters as \\xNN.

    A carriage return left as it is would split the row of manifest.csv that names the file.
    """
    text = "/".join(parts).encode(errors="surrogateescape").decode(errors="backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", lambda control: f"\\x{ord(control.group()):02x}", text)


def _hidden(part: str) -> bool:
    return part.startswith(".") or part in SYSTEM_FOLDERS


def _visible(folder: Path) -> tuple[list[Path], list[Path]]:
    """(visible entries, real sub-folders among them) of a folder."""
    entries = sorted(entry for entry in folder.iterdir() if not _hidden(entry.name))
    return entries, [entry for entry in entries if entry.is_dir() and not entry.is_symlink()]


def _holds_only_folders(folder: Path) -> bool:
    entries, folders = _visible(folder)
    return entries == folders


def _layout_root(root: Path) -> tuple[tuple[str, ...], bool]:
    """(wrapper folders to skip, whether split folders are used).

    A lone top folder holding only folders, like dogs_cat/ in an archive, is a wrapper.
    """
    prefix: tuple[str, ...] = ()
    while True:
        entries, folders = _visible(root.joinpath(*prefix))
        lone = folders[0] if len(entries) == 1 and folders else None
        if lone and lone.name.lower() not in SPLIT_FOLDERS and _holds_only_folders(lone):
            prefix += (lone.name,)
            continue
        return prefix, any(folder.name.lower() in SPLIT_FOLDERS for folder in folders)


def _all_files(root: Path) -> Iterator[Path]:
    """Every non-folder entry under root, symlinks included but never followed, in sorted order."""
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        linked = [name for name in subfolders if os.path.islink(os.path.join(folder, name))]
        subfolders[:] = [name for name in subfolders if name not in linked]
        for name in sorted(files + linked):
            yield Path(folder, name)


def _place(
    parts: tuple[str, ...], prefix: tuple[str, ...], split_layout: bool
) -> tuple[str | None, str | None, str | None]:
    """(class folder, split, refusal detail) for a file's path parts."""
    inner = parts[len(prefix) :]
    if split_layout:
        split = SPLIT_FOLDERS.get(inner[0].lower()) if len(inner) > 1 else None
        if split is None:
            return None, None, "not inside a split folder (train/, val/, validation/ or test/)"
        if len(inner) < 3:
            return None, None, f"not inside a class folder of {inner[0]}/"
        return inner[1], split, None
    if len(inner) < 2:
        return None, None, "not inside a class folder"
    return inner[0], None, None


def _kind_problem(path: Path, root: Path) -> tuple[str, str] | None:
    """(reason, detail) when path is no plain file inside the source, following a link only inside it."""
    if not path.is_symlink():
        return None if stat.S_ISREG(path.lstat().st_mode) else ("not_a_file", "not a regular file")
    target = path.resolve()
    if not target.is_relative_to(root.resolve()):
        return "symlink_outside", "symbolic link pointing outside the source"
    if not target.exists():
        return "broken_symlink", "symbolic link to nothing"
    return None if target.is_file() else ("symlink_to_folder", "symbolic link to a folder, not followed")


def walk(root: Path) -> Iterator[SourceFile]:
    """Every file under root with its class and split, or the reason it cannot be an image of the set."""
    prefix, split_layout = _layout_root(root)
    folders: dict[str, str] = {}  # case-folded safe class name -> the folder name it came from
    for path in _all_files(root):
        parts = path.relative_to(root).parts
        name = shown(parts)
        if any(_hidden(part) for part in parts):
            yield SourceFile(name, path, reason="hidden", detail="hidden file or folder")
            continue
        if problem := _kind_problem(path, root):
            yield SourceFile(name, path, reason=problem[0], detail=problem[1])
            continue
        folder, split, problem = _place(parts, prefix, split_layout)
        if problem:
            yield SourceFile(name, path, reason="outside_class_folder", detail=problem)
            continue
        label = safe_class_name(folder)
        if folders.setdefault(label.casefold(), folder) != folder:
            raise UserError(
                f"Class folders {folders[label.casefold()]!r} and {folder!r} would both be stored as "
                f"{label!r}: rename one of them in ingest.source."
            )
        yield SourceFile(name, path, label=label, split=split)


def _refuse(archive: Path, why: str) -> UserError:
    return UserError(
        f"Archive {archive} refused, nothing extracted: {why}; rebuild it without that, or extract it yourself."
    )


def _too_big(archive: Path, max_bytes: int) -> UserError:
    return _refuse(archive, f"it holds more than ingest.max_archive_bytes ({max_bytes}) bytes uncompressed")


def _checked_member(archive: Path, name: str, link: bool) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if link:
        raise _refuse(archive, f"member {name!r} is a link")
    if path.is_absolute() or re.match(r"[A-Za-z]:", name):
        raise _refuse(archive, f"member {name!r} has an absolute path")
    if ".." in path.parts:
        raise _refuse(archive, f"member {name!r} would land outside the extraction folder")
    return path


class Member(NamedTuple):
    name: str
    link: bool
    folder: bool
    regular: bool  # a plain file (not a device or pipe)
    size: int
    entry: zipfile.ZipInfo | tarfile.TarInfo


def _listing(handle: zipfile.ZipFile | tarfile.TarFile) -> Iterator[Member]:
    if isinstance(handle, zipfile.ZipFile):
        for info in handle.infolist():
            yield Member(
                info.filename, stat.S_ISLNK(info.external_attr >> 16), info.is_dir(), True, info.file_size, info
            )
    else:
        for info in handle:  # streamed: a huge member count is refused before it is all read
            yield Member(info.name, info.issym() or info.islnk(), info.isdir(), info.isfile(), info.size, info)


def _files_to_extract(archive: Path, handle, max_bytes: int, max_members: int) -> list[tuple[PurePosixPath, Member]]:
    """(safe relative path, member) of every file, all checked before anything is written."""
    files, total = [], 0
    for count, member in enumerate(_listing(handle), 1):
        if count > max_members:
            raise _refuse(archive, f"it has more than ingest.max_archive_members ({max_members}) members")
        path = _checked_member(archive, member.name, member.link)
        if not (member.folder or member.regular):
            raise _refuse(archive, f"member {member.name!r} is a device or pipe")
        total += member.size
        if total > max_bytes:
            raise _too_big(archive, max_bytes)
        if not member.folder:
            files.append((path, member))
    return files


def _extract(archive: Path, folder: Path, max_bytes: int, max_members: int) -> None:
    if zipfile.is_zipfile(archive):
        handle = zipfile.ZipFile(archive)
    elif tarfile.is_tarfile(archive):
        handle = tarfile.open(archive, "r:*")
    else:
        raise UserError(
            f"ingest.source {archive} is neither a folder nor a .zip, .tar, .tar.gz or .tgz archive: point it at one."
        )
    written = 0
    with handle:
        read = handle.open if isinstance(handle, zipfile.ZipFile) else handle.extractfile
        for path, member in _files_to_extract(archive, handle, max_bytes, max_members):
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with read(member.entry) as source, open(target, "wb") as sink:
                while chunk := source.read(CHUNK):
                    written += sink.write(chunk)
                    if written > max_bytes:  # a member larger than its header said
                        raise _too_big(archive, max_bytes)


@contextmanager
def source_folder(source: Path, max_bytes: int, max_members: int) -> Iterator[Path]:
    """Yield a folder holding the source's files: the source itself, or its archive extracted."""
    if source.is_dir():
        yield source
        return
    if not source.exists():
        raise UserError(
            f"ingest.source {source} does not exist: set it in params.yaml to a folder or archive of images, "
            "or install Fashion-MNIST with 'apt-get install dataset-fashion-mnist'."
        )
    folder = Path(tempfile.mkdtemp(prefix="augflow-archive-"))
    try:
        try:
            _extract(source, folder, max_bytes, max_members)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, RuntimeError) as exc:
            raise UserError(
                f"Archive {source} could not be extracted ({exc}): check it opens, or extract it yourself."
            ) from None
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
