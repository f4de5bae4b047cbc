"""The pages' forms. Labels are written by the templates in the reader's language;
these classes only say what is read and checked. Each carries Flask-WTF's CSRF
token (the blueprint checks it before any view runs, too)."""

from __future__ import annotations

from flask_wtf import FlaskForm  # type: ignore[import-untyped]
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import InputRequired, Length


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField(validators=[InputRequired(), Length(max=64)])
    # Long enough for a passphrase, short enough that hashing it is no denial of service.
    password = PasswordField(validators=[InputRequired(), Length(max=1024)])
    next = HiddenField()


class ButtonForm(FlaskForm):  # type: ignore[misc]
    """A form that is only a button (log out, retry, discard, a language): the token
    and where to go back to."""

    next = HiddenField()
