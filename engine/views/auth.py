"""Logging in and out, and choosing the language."""

from __future__ import annotations

import math
from functools import lru_cache

from flask import flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from ..extension import state
from ..models import User
from ..users import check_password
from . import USER_KEY, blueprint, current_user, i18n, local_path, pages, t
from .forms import ButtonForm, LoginForm
from .throttle import minutes

#: A year: the choice of language outlives sessions and logouts.
LANG_COOKIE_AGE = 365 * 24 * 3600


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    home = url_for("caseloop_views.home")
    form = LoginForm()
    if request.method == "GET":
        target = local_path(request.args.get("next"), home)
        if current_user() is not None:
            return redirect(target)
        form.next.data = target
        return render_template("caseloop/login.html", form=form)
    target = local_path(form.next.data, home)
    form.next.data = target
    if not form.validate():
        return render_template("caseloop/login.html", form=form), 400
    name, password = (form.username.data or "").strip(), form.password.data or ""
    address = request.remote_addr or "-"
    throttle = pages().throttle
    wait = throttle.wait(name, address)
    if wait:  # refused before the password is even looked at
        page = render_template("caseloop/login.html", form=form,
                               error=t("login_throttled", minutes=minutes(wait)))
        return page, 429, {"Retry-After": str(math.ceil(wait))}
    user = state().db.session.execute(
        select(User).where(User.name == name, User.active.is_(True))).scalar_one_or_none()
    if user is None:
        # Hash anyway: an unknown name must take as long as a wrong password.
        check_password_hash(_decoy_hash(), password)
    if user is None or not check_password(user, password):
        throttle.failed(name, address)
        return render_template("caseloop/login.html", form=form, error=t("login_failed"))
    throttle.succeeded(name, address)
    session.clear()  # nothing from before the login survives it
    session[USER_KEY] = user.id
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME, checked on load
    return redirect(target)


@blueprint.post("/logout")
def logout() -> Response:
    session.clear()
    flash(t("logged_out"), "info")
    return redirect(url_for("caseloop_views.login"))


@blueprint.post("/language")
def language() -> Response:
    form = ButtonForm()
    chosen = request.form.get("lang", "")
    response = redirect(local_path(form.next.data, url_for("caseloop_views.home")))
    if chosen in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, chosen, max_age=LANG_COOKIE_AGE, httponly=True,
                            samesite="Lax", secure=request.is_secure)
    return response


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return generate_password_hash("not a password of anyone")
