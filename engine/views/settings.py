"""A reader's own settings: the time zone the pages show times in. (The language is
chosen on every page and remembered in a cookie.)"""

from __future__ import annotations

import zoneinfo

from flask import current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..extension import state
from ..users import known_zone
from . import blueprint, current_user, login_required, t


def _zones() -> list[str]:
    # Region/City names (and UTC): what people pick from; not the legacy aliases.
    return sorted(z for z in zoneinfo.available_timezones()
                  if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))


@blueprint.route("/settings", methods=["GET", "POST"])
@login_required
def settings() -> Response | tuple[str, int]:
    user = current_user()
    assert user is not None
    error = ""
    if request.method == "POST":
        chosen = request.form.get("timezone", "").strip()
        if chosen and not known_zone(chosen):
            error = t("settings_bad_zone")
        else:
            user.timezone = chosen or None  # the session's own row (views' _before)
            state().db.session.commit()
            flash(t("settings_saved"))
            return redirect(url_for("caseloop_views.settings"))
    return render_template("caseloop/settings.html", zones=["UTC", *_zones()],
                           chosen=user.timezone or "", error=error,
                           default=current_app.config["CASELOOP_TIMEZONE"]), 422 if error else 200
