"""The HTML pages: login, language, home, the administrators' job queue and mail
log, and the customer's survey page. Server-rendered Jinja with Flask-WTF forms; no
inline script or style.

Every POST to these pages must carry a CSRF token (checked before the view runs,
so a page cannot forget it). The check is scoped to this blueprint rather than
installed app-wide with ``CSRFProtect.init_app``: the JSON API authenticates with
bearer tokens, survey answers with the link's token, and an embedding host's own
routes are the host's business — none of them is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import (  # type: ignore[import-untyped]
    CSRFError,
    CSRFProtect,
    generate_csrf,
    validate_csrf,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import ValidationError

from ..extension import state
from ..models import User
from . import i18n
from .throttle import LoginThrottle

blueprint = Blueprint("caseloop_views", __name__, template_folder="../templates",
                      static_folder="../static", static_url_path="/assets")
#: Used only for its ``protect()`` (Flask-WTF's token and referrer checks), never
#: ``init_app``-ed: that would check every POST of the whole application.
csrf = CSRFProtect()
#: The session key holding the signed-in user's id.
USER_KEY = "caseloop_user"

#: No inline script or style anywhere, no framing, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

#: The customers' pages: the survey (its address holds a secret, the link's token) and
#: the public intake form (its layout is the survey's). They send no Referer anywhere
#: (``Referrer-Policy: no-referrer``), are not indexed, and their POSTs are checked for
#: the CSRF token alone — Flask-WTF's HTTPS check wants a Referer from this host and
#: would refuse them all. What that check adds (a man in the middle planting a cookie
#: over plain HTTP) buys nothing here: nobody is logged in on these pages, and the
#: survey's credential is its link.
NO_REFERRER = frozenset({"caseloop_views.survey", "caseloop_views.intake",
                         "caseloop_views.intake_live"})

#: Pages another page of this site may show in a frame: the designer's preview.
FRAMEABLE = frozenset({"caseloop_views.designer_preview"})

View = TypeVar("View", bound=Callable[..., Any])


@dataclass
class Pages:
    """What the pages keep per application (``app.extensions["caseloop_pages"]``)."""

    throttle: LoginThrottle


def init_app(app: Flask, url_prefix: str) -> None:
    """Mount the pages under ``url_prefix``; refuse a time zone that does not exist."""
    try:
        ZoneInfo(str(app.config["CASELOOP_TIMEZONE"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(f"CASELOOP_TIMEZONE: unknown time zone "
                           f"'{app.config['CASELOOP_TIMEZONE']}' (an IANA name such as "
                           "'Asia/Shanghai' or 'Europe/Berlin')") from None
    # Flask-WTF's defaults, without overriding a host's own choices.
    app.config.setdefault("WTF_CSRF_METHODS", {"POST", "PUT", "PATCH", "DELETE"})
    app.config.setdefault("WTF_CSRF_FIELD_NAME", "csrf_token")
    app.config.setdefault("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"])
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    app.extensions["caseloop_pages"] = Pages(LoginThrottle(
        int(app.config["CASELOOP_LOGIN_ATTEMPTS"]), float(app.config["CASELOOP_LOGIN_WINDOW"])))
    app.register_blueprint(blueprint, url_prefix=url_prefix or None)
    if url_prefix:  # '/care/' leads to the pages; standalone, create_app's '/' does
        app.add_url_rule(f"{url_prefix}/", "caseloop_pages_root",
                         lambda: redirect(url_for("caseloop_views.home")))


def pages() -> Pages:
    found: Pages = current_app.extensions["caseloop_pages"]
    return found


def current_user() -> User | None:
    user: User | None = g.get("caseloop_user")
    return user


def is_admin(user: User | None) -> bool:
    return user is not None and bool(set(user.roles or ()) &
                                     set(current_app.config["CASELOOP_ADMIN_ROLES"]))


def login_required(view: View) -> View:
    """Anonymous readers go to the login page, and come back here afterwards."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("caseloop_views.login", next=request.full_path
                                    if request.query_string else request.path))
        return view(*args, **kwargs)

    return cast(View, wrapped)


def admin_required(view: View) -> View:
    """Administrators only (``CASELOOP_ADMIN_ROLES``); others get a 403 page."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not is_admin(current_user()):
            return error_page(403, "forbidden")
        return view(*args, **kwargs)

    return login_required(cast(View, wrapped))


def local_path(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``: a ``next`` parameter
    must never send a reader elsewhere (``//evil.example``, ``https://…``, ``/\\evil``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\\\r\n\t") or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


def t(key: str, **values: object) -> str:
    """A message in the reader's language."""
    return i18n.text(g.caseloop_lang, key, **values)


def error_page(status: int, key: str) -> tuple[str, int]:
    return render_template("caseloop/error.html", status=status, message=t(key)), status


@blueprint.before_request
def _before() -> None:
    g.caseloop_lang = i18n.request_language()
    if request.endpoint == "caseloop_views.static":
        return
    if request.endpoint in NO_REFERRER:
        _token_only()
    else:
        csrf.protect()  # raises CSRFError (400) for a POST without a valid token
    st = state()
    if st.load_error is None:
        st.registry.refresh(st.db.session)
    g.caseloop_user = None
    user_id = session.get(USER_KEY)
    if isinstance(user_id, int):
        user = state().db.session.get(User, user_id)
        if user is not None and user.active:
            g.caseloop_user = user
        else:  # deactivated or removed since: the session ends
            session.pop(USER_KEY, None)


def _token_only() -> None:
    """``csrf.protect()`` without its referrer check (for NO_REFERRER pages)."""
    if request.method not in current_app.config["WTF_CSRF_METHODS"]:
        return
    try:
        validate_csrf(request.form.get(current_app.config["WTF_CSRF_FIELD_NAME"]))
    except ValidationError as exc:
        raise CSRFError(exc.args[0]) from None
    g.csrf_valid = True


@blueprint.after_request
def _headers(response: Response) -> Response:
    framed = request.endpoint in FRAMEABLE
    response.headers["Content-Security-Policy"] = CSP.replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'") if framed else CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if framed else "DENY"
    if request.endpoint in NO_REFERRER:
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    else:
        response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "caseloop_views.static":
        # Pages show customers' data: not kept in caches, nor behind the back button.
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    return response


@blueprint.context_processor
def _template_globals() -> dict[str, Any]:
    user = current_user()
    return {"t": t, "lang": g.caseloop_lang, "csrf_token": generate_csrf, "user": user,
            "is_admin": is_admin(user),
            "when": lambda value: i18n.when(value, g.caseloop_lang),
            "zone_name": i18n.zone_name(),
            "here": request.full_path if request.query_string else request.path}


@blueprint.errorhandler(CSRFError)
def _csrf_error(_exc: CSRFError) -> tuple[str, int]:
    state().db.session.rollback()
    if request.endpoint == survey.ENDPOINT:  # a customer: their answers, not an error page
        return survey.expired_form()
    if request.endpoint == intake.ENDPOINT:  # the same for the public intake page
        return intake.expired_form()
    return error_page(400, "csrf_failed")


@blueprint.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
    status = exc.code or 500
    key = {400: "bad_request", 403: "forbidden", 404: "not_found"}.get(status)
    if key is None:
        return exc  # 405 and friends: Werkzeug's own page is fine
    return error_page(status, key)


from . import (  # noqa: E402,F401  (routes register on the blueprint)
    admin,
    auth,
    cases,
    dashboard,
    designer,
    designer_live,
    downloads,
    files,
    home,
    inbox,
    intake,
    settings,
    survey,
)
