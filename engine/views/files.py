"""Attachments on the pages: uploads taken from a case form, and their download.

``GET /files/<case_id>/<file_id>`` serves a file of a case the reader may see, if
it is one of the case's file field values in a field the case's state does not hide:
always as an attachment (``Content-Disposition: attachment; filename*=UTF-8''…``),
typed only with the types :mod:`caseloop.uploads` recognises (else
``application/octet-stream``), with ``nosniff``. Anything else is a 404, so ids
cannot be probed.

The case pages call :func:`take` before saving (the checked files are stored, their
descriptions merged into the submitted data), :func:`discard` when the case was
not saved, and :func:`settle` after the commit.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from flask import current_app, g, render_template, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from .. import forms
from ..errors import NotFound
from ..extension import state
from ..uploads import KNOWN_TYPES, Incoming, Store, UploadError, file_ids, human
from . import blueprint, error_page, i18n, login_required, t
from .cases import CASE_ID, Page, actor

#: The name of a file's "remove" checkbox on a case form (its value: the file's id).
REMOVE = "_remove:{}"


def store() -> Store:
    cfg = current_app.config
    root = cfg["CASELOOP_UPLOADS"] or os.path.join(current_app.instance_path, "uploads")
    return Store(root, int(cfg["CASELOOP_MAX_UPLOAD"]))


def message(exc: UploadError) -> str:
    params = dict(exc.params)
    if exc.rule == "too_large":
        params["limit"] = human(int(params["limit"]))
    return t(f"file_{exc.rule}", name=exc.name, **params)


def take(form: Any, base: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """The file fields of a posted case form: the files of ``base`` not ticked for
    removal plus the checked and stored uploads, by field name, and the new ids.
    None when a file is refused: its message is next to its field, nothing is kept."""
    b = forms.binding(form)
    data: dict[str, Any] = {}
    new: list[str] = []
    files = store()
    for f in b.definition.fields:
        mode = b.modes.get(f.name)
        if (f.type != "file" or f.name not in form or mode is None
                or mode.permission != "editable" or mode.readonly):
            continue
        had = [x for x in (base.get(f.name) or []) if isinstance(x, dict)]
        removed = set(request.form.getlist(REMOVE.format(f.name)))
        kept = [x for x in had if x.get("id") not in removed]
        uploads = [Incoming(u.filename or "", u.stream)
                   for u in request.files.getlist(f.name) if u and u.filename]
        if not uploads and len(kept) == len(had):
            continue
        try:
            stored = files.save(f, uploads, kept=len(kept))
        except UploadError as exc:
            form[f.name].errors = [*form[f.name].errors, message(exc)]
            files.delete(new)
            return None
        new.extend(x["id"] for x in stored)
        data[f.name] = kept + stored
    return data, new


def discard(new: Iterable[str]) -> None:
    """The case was not saved: its new files go."""
    store().delete(new)


def settle(new: Iterable[str], saved: Mapping[str, Any]) -> None:
    """After the commit: new files the case does not hold (a hidden field's) go."""
    held: set[str] = set()
    for value in saved.values():
        if isinstance(value, list):
            held |= file_ids(value)
    store().delete(x for x in new if x not in held)


def disposition(name: str) -> str:
    """``attachment`` with the original name: an ASCII fallback and RFC 5987's
    ``filename*`` (UTF-8, percent-encoded), so no name can break the header."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = "".join(c for c in ascii_name if c.isprintable() and c not in '"\\;')
    ascii_name = ascii_name.strip() or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@blueprint.get(f"/files/{CASE_ID}/<file_id>")
@login_required
def file_download(case_id: int, file_id: str) -> Page:
    cases = state().cases()
    try:
        found = cases.get(case_id, actor())
    except NotFound:
        return error_page(404, "not_found")
    wf = cases.workflow_of(found)
    st = wf.states[found.state]
    item = next((x for f in wf.form.fields
                 if f.type == "file" and st.fields.of(f.name) != "hidden"
                 for x in (found.data.get(f.name) or [])
                 if isinstance(x, dict) and x.get("id") == file_id), None)
    path = store().path(file_id) if item is not None else None
    if item is None or path is None:
        return error_page(404, "not_found")
    kind = item.get("type")
    response = send_file(path, mimetype=kind if kind in KNOWN_TYPES else
                         "application/octet-stream", as_attachment=True,
                         download_name="file", conditional=False, etag=False, max_age=0)
    response.headers["Content-Disposition"] = disposition(str(item.get("name") or "file"))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.before_app_request
def _page_body_limit() -> None:
    """The pages take files: their requests may be larger than the app's own limit
    (``MAX_CONTENT_LENGTH``), up to ``CASELOOP_MAX_PAGE_BODY``. Set before the body
    is read (this runs before the blueprint's CSRF check reads the form)."""
    if request.blueprint == blueprint.name:
        request.max_content_length = int(current_app.config["CASELOOP_MAX_PAGE_BODY"])


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> tuple[str, int] | Response:
    g.caseloop_lang = g.get("caseloop_lang") or i18n.request_language()
    limit = human(int(current_app.config["CASELOOP_MAX_PAGE_BODY"]))
    return render_template("caseloop/error.html", status=413,
                           message=t("file_request_too_large", limit=limit)), 413
