"""Attachments: uploaded files checked and stored outside the static folder.

Free of Flask globals: the pages make an :class:`Store` from the configuration
(``CASELOOP_UPLOADS``, ``CASELOOP_MAX_UPLOAD``) and pass it the field and the
uploaded streams. A stored file is named by a random id (32 hex digits), never by
the client's name; its description ``{id, name, size, type}`` is what the case's
field holds (what :func:`caseloop.values.clean` accepts).

Checks, all before anything is kept: the count against the field's ``max_files``
(with the files already on the case), each size against ``max_size`` and the
global cap, and the type: the name's extension (or the type) must be in the field's
``accept``, and the first bytes must match the extension for the types in
:data:`SIGNATURES` (so an ``.exe`` renamed ``.pdf`` is refused). Executables are
refused whatever their name. A small table of signatures rather than libmagic
(``python-magic``, ``filetype``): the few types a complaint carries are recognised
by a handful of fixed bytes, and a system library would be one more thing to
install on every host for no better answer on these.

Writes are atomic: each file goes to a temporary file in the store's folder, and
is renamed to its id only once every file of the request passed. A caller that
then fails to save the case calls :meth:`Store.delete` with the new ids.
"""

from __future__ import annotations

import mimetypes
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .spec.model import Field
from .values import _accepts  # the same rule clean() applies to the stored value

#: A stored file's id: 128 random bits as hex.
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
#: Bytes read to recognise a type.
HEAD = 4096
#: Longest original name kept (characters); longer ones are shortened, keeping the extension.
NAME_MAX = 200
_CHUNK = 64 * 1024


def _ftyp(brands: tuple[bytes, ...] | None = None) -> Callable[[bytes], bool]:
    """ISO base media files (MP4, MOV, HEIC): ``....ftyp<brand>``."""
    def test(head: bytes) -> bool:
        return head[4:8] == b"ftyp" and (brands is None or head[8:12] in brands)
    return test


def _text(head: bytes) -> bool:
    """Plain text: no NUL byte, and UTF-8 (a character cut at the end of the head is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def _zip(head: bytes) -> bool:
    """Zip archives, hence the Office Open XML files (docx, xlsx, pptx)."""
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def _ole(head: bytes) -> bool:
    """The older Office files (doc, xls): an OLE compound document."""
    return head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")


def _mov(head: bytes) -> bool:
    """QuickTime: ``ftyp`` or, in older files, another top-level atom first."""
    return _ftyp()(head) or head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


_HEIF = _ftyp((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"))
_ZIP, _OLE, _MOV = _zip, _ole, _mov

#: extension -> (type, test of the first bytes). Files whose extension is not here
#: are stored as ``application/octet-stream`` unless the definition allows them by
#: name; they are still refused if they look like an executable.
SIGNATURES: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    ".pdf": ("application/pdf", lambda h: h.startswith(b"%PDF-")),
    ".png": ("image/png", lambda h: h.startswith(b"\x89PNG\r\n\x1a\n")),
    ".jpg": ("image/jpeg", lambda h: h.startswith(b"\xff\xd8\xff")),
    ".jpeg": ("image/jpeg", lambda h: h.startswith(b"\xff\xd8\xff")),
    ".gif": ("image/gif", lambda h: h.startswith((b"GIF87a", b"GIF89a"))),
    ".webp": ("image/webp", lambda h: h.startswith(b"RIFF") and h[8:12] == b"WEBP"),
    ".heic": ("image/heic", _HEIF),
    ".heif": ("image/heif", _HEIF),
    ".mp4": ("video/mp4", _ftyp()),
    ".m4v": ("video/mp4", _ftyp()),
    ".mov": ("video/quicktime", _MOV),
    ".txt": ("text/plain", _text),
    ".csv": ("text/csv", _text),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", _ZIP),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
              _ZIP),
    ".doc": ("application/msword", _OLE),
    ".xls": ("application/vnd.ms-excel", _OLE),
    ".zip": ("application/zip", _ZIP),
}
#: The types a download is served as; any other stored type goes out as octet-stream.
KNOWN_TYPES = frozenset(kind for kind, _test in SIGNATURES.values())
#: Executables (Windows PE, ELF, Mach-O, scripts with ``#!``): never stored.
_EXECUTABLE = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
               b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"#!")


class UploadError(Exception):
    """A file (or the set of files) is refused; ``rule`` names the message:
    ``too_large`` (``limit``), ``type`` (``accepted``), ``too_many`` (``limit``)."""

    def __init__(self, rule: str, name: str = "", **params: Any) -> None:
        super().__init__(rule, name)
        self.rule, self.name, self.params = rule, name, params


@dataclass(frozen=True)
class Incoming:
    """An uploaded file as the request gives it: the client's name and a stream."""

    name: str
    stream: IO[bytes]


def safe_name(raw: str) -> str:
    """The client's file name fit to show and to offer on download: the last path
    part only, NFC, without control characters, at most :data:`NAME_MAX` characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    if not name:
        return "file"
    if len(name) > NAME_MAX:
        stem, ext = os.path.splitext(name)
        ext = ext[:16]
        name = stem[:NAME_MAX - len(ext)] + ext
    return name


def extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def sniff(name: str, head: bytes) -> str | None:
    """The type of a file named ``name`` starting with ``head``, or None when its
    bytes contradict its extension or it is an executable."""
    if head.startswith(_EXECUTABLE):
        return None
    known = SIGNATURES.get(extension(name))
    if known is not None:
        kind, test = known
        return kind if test(head) else None
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def accepted_list(f: Field) -> str:
    """The field's ``accept`` for a message: ``PDF, JPEG, image/*``."""
    return ", ".join(a[1:].upper() if a.startswith(".") else a for a in f.accept)


class Store:
    """A folder of uploaded files, by id; ``max_upload`` caps every file (bytes)."""

    def __init__(self, root: str | os.PathLike[str], max_upload: int) -> None:
        self.root = Path(root)
        self.max_upload = int(max_upload)

    def path(self, file_id: str) -> Path | None:
        """Where the file ``file_id`` is, or None for a malformed id or a missing file."""
        if not isinstance(file_id, str) or not FILE_ID.fullmatch(file_id):
            return None
        found = self.root / file_id[:2] / file_id
        return found if found.is_file() else None

    def limit(self, f: Field) -> int:
        return min(self.max_upload, f.max_size) if f.max_size is not None else self.max_upload

    def save(self, f: Field, files: Iterable[Incoming], *, kept: int = 0
             ) -> list[dict[str, Any]]:
        """Check and store ``files`` for ``f`` (which already holds ``kept`` files):
        all of them or none. Returns their descriptions; raises :class:`UploadError`."""
        files = list(files)
        if f.max_files is not None and kept + len(files) > f.max_files:
            raise UploadError("too_many", limit=f.max_files)
        if not files:
            return []
        self.root.mkdir(parents=True, exist_ok=True)
        limit = self.limit(f)
        staged: list[tuple[str, dict[str, Any]]] = []
        try:
            for upload in files:
                staged.append(self._stage(f, upload, limit))
            out = []
            for temp, described in staged:
                folder = self.root / described["id"][:2]
                folder.mkdir(exist_ok=True)
                os.replace(temp, folder / described["id"])
                out.append(described)
            staged = []
            return out
        except BaseException:
            self.delete(d["id"] for _t, d in staged)
            raise
        finally:
            for temp, _described in staged:
                _unlink(Path(temp))

    def _stage(self, f: Field, upload: Incoming, limit: int) -> tuple[str, dict[str, Any]]:
        name = safe_name(upload.name)
        fd, temp = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        try:
            size, head = 0, b""
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = upload.stream.read(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise UploadError("too_large", name, limit=limit)
                    if len(head) < HEAD:
                        head += chunk[:HEAD - len(head)]
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            kind = sniff(name, head)
            if kind is None or not _accepts(f, name, kind):
                raise UploadError("type", name, accepted=accepted_list(f))
        except BaseException:
            _unlink(Path(temp))
            raise
        return temp, {"id": secrets.token_hex(16), "name": name, "size": size, "type": kind}

    def delete(self, ids: Iterable[str]) -> None:
        """Remove stored files (those of a case that was not saved); unknown ids are
        ignored."""
        for file_id in ids:
            found = self.path(file_id)
            if found is not None:
                _unlink(found)


def human(size: int) -> str:
    """A size for a message: ``10 MB``, ``1.5 KB``, ``300 bytes``."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def file_ids(value: Any) -> set[str]:
    """The ids in a file field's value (a list of descriptions)."""
    items = value if isinstance(value, list) else []
    return {x["id"] for x in items if isinstance(x, dict) and isinstance(x.get("id"), str)}


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
