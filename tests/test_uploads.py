"""caseloop.uploads: files checked (size, count, type by extension and first bytes)
and stored by random id, atomically, all or none."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import pytest

from caseloop import values
from caseloop.spec.model import Field, Form, Text
from caseloop.uploads import (
    Incoming,
    Store,
    UploadError,
    safe_name,
    sniff,
)

PDF = b"%PDF-1.7\n" + b"x" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 50
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 50
EXE = b"MZ\x90\x00" + b"\x00" * 200
DOCX = b"PK\x03\x04" + b"\x00" * 50
ATTACH = Field("attachments", "file", Text("Files", "文件"),
               accept=(".pdf", ".jpg", ".png", "image/*", ".txt", ".docx"),
               max_size=1000, max_files=3)


def incoming(name: str, data: bytes) -> Incoming:
    return Incoming(name, io.BytesIO(data))


def stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "uploads", 10_000)


def test_sniffing_matches_the_extension() -> None:
    assert sniff("a.pdf", PDF) == "application/pdf"
    assert sniff("A.PNG", PNG) == "image/png"
    assert sniff("photo.jpeg", JPEG) == "image/jpeg"
    assert sniff("w.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff("g.gif", b"GIF89a....") == "image/gif"
    assert sniff("n.txt", "你好，world\n".encode()) == "text/plain"
    assert sniff("r.docx", DOCX).startswith("application/vnd.openxmlformats")
    assert sniff("v.mov", b"\x00\x00\x00\x14ftypqt  ") == "video/quicktime"
    assert sniff("i.heic", b"\x00\x00\x00\x18ftypheic") == "image/heic"
    # Contradictions and executables are refused, whatever the name.
    assert sniff("invoice.pdf", EXE) is None
    assert sniff("photo.jpg", PDF) is None
    assert sniff("notes.txt", b"abc\x00def") is None
    assert sniff("tool.bin", EXE) is None
    assert sniff("run.sh", b"#!/bin/sh\nrm -rf /") is None
    assert sniff("data.json", b"{}") == "application/json"


def test_a_stored_file_is_named_by_id_and_its_description_passes_clean(store: Store) -> None:
    [desc] = store.save(ATTACH, [incoming("../../etc/passwd/报告 1.pdf", PDF)])
    assert desc["name"] == "报告 1.pdf" and desc["size"] == len(PDF)
    assert desc["type"] == "application/pdf" and len(desc["id"]) == 32
    [path] = stored(store.root)
    assert path == store.path(desc["id"]) and path.read_bytes() == PDF
    assert path.name == desc["id"] and store.root in path.parents
    form = Form("f", Text("F", "F"), None, (ATTACH,), "", "")
    assert values.clean(form, {"attachments": [desc]}).data["attachments"] == [desc]


@pytest.mark.parametrize("bad", ["../x", "..", "", "A" * 32, "0" * 31, "0" * 32 + "/",
                                 "../../" + "0" * 26, "0" * 32 + "\x00"])
def test_malformed_or_unknown_ids_find_nothing(store: Store, bad: str) -> None:
    assert store.path(bad) is None
    assert store.path("0" * 32) is None  # well formed, not stored


def test_names_are_cleaned_for_showing() -> None:
    assert safe_name("C:\\Users\\me\\scan.PDF") == "scan.PDF"
    assert safe_name("a\r\nb\x00.pdf") == "ab.pdf"
    assert safe_name("..") == "file" and safe_name("") == "file"
    assert safe_name("Cafe\u0301.txt") == "Café.txt"  # NFC
    long = safe_name("x" * 500 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


@pytest.mark.parametrize(("files", "rule"), [
    ([("big.pdf", PDF + b"y" * 1000)], "too_large"),
    ([("invoice.pdf", EXE)], "type"),
    ([("movie.mp4", b"\x00\x00\x00\x18ftypmp42")], "type"),  # not in accept
    ([("a.pdf", PDF)] * 4, "too_many"),
])
def test_refused_files_store_nothing(store: Store, files: list[tuple[str, bytes]],
                                     rule: str) -> None:
    with pytest.raises(UploadError) as exc:
        store.save(ATTACH, [incoming(n, d) for n, d in files])
    assert exc.value.rule == rule
    assert stored(store.root) == []


def test_one_bad_file_refuses_the_whole_set(store: Store) -> None:
    with pytest.raises(UploadError) as exc:
        store.save(ATTACH, [incoming("a.pdf", PDF), incoming("b.png", PNG),
                            incoming("c.pdf", EXE)])
    assert exc.value.rule == "type" and exc.value.name == "c.pdf"
    assert stored(store.root) == []
    assert "PDF, JPG, PNG, image/*" in str(exc.value.params["accepted"])


def test_the_count_includes_the_files_kept(store: Store) -> None:
    with pytest.raises(UploadError):
        store.save(ATTACH, [incoming("a.pdf", PDF), incoming("b.pdf", PDF)], kept=2)
    assert len(store.save(ATTACH, [incoming("a.pdf", PDF)], kept=2)) == 1


def test_the_global_cap_beats_a_larger_field_limit(tmp_path: Path) -> None:
    small = Store(tmp_path, 50)
    with pytest.raises(UploadError) as exc:
        small.save(ATTACH, [incoming("a.pdf", PDF)])
    assert exc.value.params["limit"] == 50
    anything = Field("any", "file", Text("Any", "Any"))
    assert small.save(anything, [incoming("a.pdf", b"%PDF-1")])[0]["size"] == 6


class Broken(io.RawIOBase):
    """A stream that fails half-way (a client that went away)."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.sent:
            raise OSError("connection reset")
        self.sent = True
        return PDF


def test_a_failed_write_leaves_nothing_behind(store: Store) -> None:
    broken: IO[bytes] = Broken()  # type: ignore[assignment]
    with pytest.raises(OSError):
        store.save(ATTACH, [incoming("a.pdf", PDF), Incoming("b.pdf", broken)])
    assert stored(store.root) == []  # neither the first file nor a temporary one


def test_delete_removes_what_was_written(store: Store) -> None:
    written = store.save(ATTACH, [incoming("a.pdf", PDF), incoming("b.png", PNG)])
    store.delete([written[0]["id"], "../nope", "0" * 32])
    assert stored(store.root) == [store.path(written[1]["id"])]


def test_no_temporary_file_is_left_after_a_save(store: Store) -> None:
    store.save(ATTACH, [incoming("a.pdf", PDF)])
    assert not [p for p in store.root.rglob(".upload-*")]

