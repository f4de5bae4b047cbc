"""Validate submitted field values against a form: types, conditions, computed values.

This is the server's authority on what a case may hold. It is pure: it takes
a :class:`~caseloop.spec.Form` and plain values, and returns the cleaned data
and per-field errors in the user's language. The JSON API and the HTML forms
both call it, so the rules are the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from .expr import ExprError
from .spec.extensions import clean_value
from .spec.forms import SCALES
from .spec.model import Field, Form, Text

#: Longest user name or reference: the column a customer reference is copied to.
REFERENCE_MAX = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

MESSAGES: dict[str, Text] = {
    "required": Text("This field is required.", "此项为必填项。"),
    "unknown": Text("This form has no such field.", "表单中没有此字段。"),
    "computed": Text("This value is computed and cannot be set.", "此值为自动计算，不能填写。"),
    "readonly": Text("This field cannot be changed now.", "当前状态下不能修改此字段。"),
    "invalid": Text("Enter a valid value.", "请输入有效的值。"),
    "integer": Text("Enter a whole number.", "请输入整数。"),
    "number": Text("Enter a number.", "请输入数字。"),
    "boolean": Text("Choose yes or no.", "请选择是或否。"),
    "date": Text("Enter a date (YYYY-MM-DD).", "请输入日期（YYYY-MM-DD）。"),
    "datetime": Text("Enter a date and time.", "请输入日期和时间。"),
    "choices": Text("Choose one of the options.", "请从选项中选择。"),
    "email": Text("Enter a valid email address.", "请输入有效的邮箱地址。"),
    "phone": Text("Enter a valid phone number.", "请输入有效的电话号码。"),
    "min": Text("Must be at least {limit}.", "不能小于 {limit}。"),
    "max": Text("Must be at most {limit}.", "不能大于 {limit}。"),
    "length": Text("Must be {low} to {high} characters long.", "长度须为 {low} 至 {high} 个字符。"),
    "pattern": Text("Not in the expected format.", "格式不正确。"),
    "rows": Text("Needs {low} to {high} rows.", "需要 {low} 至 {high} 行。"),
    "selected": Text("Choose {low} to {high} options.", "请选择 {low} 至 {high} 项。"),
    "file": Text("A file is too large or of a type not allowed.", "文件过大或类型不允许。"),
    "files": Text("Too many files.", "文件数量过多。"),
}


@dataclass
class Outcome:
    """Cleaned data (only visible, valid fields) and errors by field path."""

    data: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class Rejected(Exception):
    """A value does not fit its field; ``rule`` names the message."""

    def __init__(self, rule: str, **params: Any) -> None:
        self.rule, self.params = rule, params


def clean(form: Form, submitted: Mapping[str, Any], *, base: Mapping[str, Any] | None = None,
          may_edit: Callable[[str], bool] | None = None, lang: str = "en",
          region: str = "CN", names: Mapping[str, Any] | None = None,
          require: tuple[str, ...] = ()) -> Outcome:
    """Merge ``submitted`` onto ``base`` and validate the result against ``form``.

    ``may_edit(name)`` says whether a field may change now (state permissions);
    ``names`` are extra expression names (now, state, user…); ``require`` lists
    fields that must be filled whatever the form says (a transition's step).
    """
    base = dict(base or {})
    out = Outcome(data={})
    known = {f.name: f for f in form.fields}
    values: dict[str, Any] = {}
    before: dict[str, Any] | None = None  # what readonly_if sees: the data before this change
    for name, raw in submitted.items():
        f = known.get(name)
        if f is None:
            _error(out, name, None, "unknown", lang)
        elif f.computed:
            if raw != base.get(name):
                _error(out, name, f, "computed", lang)
        elif may_edit is not None and not may_edit(name) and raw != base.get(name):
            _error(out, name, f, "readonly", lang)
        elif f.readonly_if is not None and raw != base.get(name):
            if before is None:
                before = {**(names or {}), **expression_values(form, base)}
            if f.readonly_if.test(before):
                _error(out, name, f, "readonly", lang)
            else:
                values[name] = raw
        else:
            values[name] = raw
    merged = {f.name: values.get(f.name, base.get(f.name)) for f in form.fields}
    typed: dict[str, Any] = {}
    scope: dict[str, Any] = dict(names or {})
    # Groups last: their rows' conditions may read the other fields.
    plain = [f for f in form.fields if not f.computed and f.type != "group"]
    groups = [f for f in form.fields if not f.computed and f.type == "group"]
    for f in plain + groups:
        if f is (groups[0] if groups else None):
            scope.update(expression_values(form, typed))
        try:
            typed[f.name] = convert(f, merged[f.name], region=region, lang=lang, out=out,
                                    path=f.name, names=scope)
        except Rejected as bad:
            _error(out, f.name, f, bad.rule, lang, **bad.params)
            typed[f.name] = None
    scope = {**(names or {}), **expression_values(form, typed)}
    compute(form, typed, scope)
    for f in form.fields:
        value = typed.get(f.name)
        if f.visible_if is not None and not f.visible_if.test(scope):
            # Hidden: neither validated nor stored (its rows' errors go with it).
            for key in [k for k in out.errors if k == f.name or k.startswith(f"{f.name}[")]:
                del out.errors[key]
            continue
        needed = f.required or f.name in require or (
            f.required_if is not None and f.required_if.test(scope))
        if needed and not f.computed and not filled(value) and f.name not in out.errors:
            _error(out, f.name, f, "required", lang)
        if value is not None:
            out.data[f.name] = value
    return out


def defaults(form: Form) -> dict[str, Any]:
    """The declared initial values (``default:``) of a form's fields."""
    return {f.name: f.default for f in form.fields if f.default is not None and not f.computed}


def filled(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def convert(f: Field, raw: Any, *, region: str, lang: str, out: Outcome, path: str,
            names: Mapping[str, Any] | None = None) -> Any:
    """One submitted value -> its stored JSON form; raises ``Rejected``."""
    if raw is None or raw == "" or raw == []:
        return None
    if f.plugin is not None:
        return _plugin(f, raw)
    t = f.type
    if t in ("text", "textarea", "user", "reference"):
        if not isinstance(raw, str):
            raise Rejected("invalid")
        value = raw.strip() if t != "textarea" else raw
        if not value.strip():
            return None  # blank is empty, not too short
        if t in ("user", "reference") and len(value) > REFERENCE_MAX:
            raise Rejected("length", low=1, high=REFERENCE_MAX)  # it is copied to a column
        _length(f, value)
        _pattern(f, value)
        return value or None
    if t == "email":
        if not isinstance(raw, str) or not _EMAIL.match(raw.strip()):
            raise Rejected("email")
        local, domain = raw.strip().rsplit("@", 1)
        value = f"{local}@{domain.lower()}"
        _length(f, value)
        _pattern(f, value)
        return value
    if t == "phone":
        return _phone(f, raw, region)
    if t in ("integer", "rating", "nps", "ces"):
        number = _integer(raw)
        low, high = SCALES.get(t, (f.min, f.max))  # type: Any, Any
        _bounds(number, low if low is not None else f.min, high if high is not None else f.max)
        return number
    if t == "decimal":
        amount = _decimal(raw)
        if f.places is not None:
            amount = round(amount, f.places)
        _bounds(amount, f.min, f.max)
        return amount
    if t == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "on", "off", "1", "0"):
            return raw.lower() in ("true", "on", "1")
        raise Rejected("boolean")
    if t == "date":
        day = _date(raw)
        _bounds(day.isoformat(), _iso(f.min), _iso(f.max))
        return day.isoformat()
    if t == "datetime":
        moment = _datetime(raw)
        _bounds(moment.date().isoformat(), _iso(f.min), _iso(f.max))
        return moment.isoformat().replace("+00:00", "Z")
    if t == "choice":
        if not isinstance(raw, str) or raw not in f.choice_values():
            raise Rejected("choices")
        return raw
    if t == "multichoice":
        if not isinstance(raw, list) or not all(v in f.choice_values() for v in raw):
            raise Rejected("choices")
        picked = list(dict.fromkeys(raw))
        low, high = f.min_selected or 0, f.max_selected or len(f.choices)
        if not low <= len(picked) <= high:
            raise Rejected("selected", low=low, high=high)
        return picked
    if t == "file":
        return _files(f, raw)
    if t == "group":
        return _rows(f, raw, region=region, lang=lang, out=out, path=path, names=names)
    raise Rejected("invalid")


def _plugin(f: Field, raw: Any) -> Any:
    """A plugin's type: scalar values only (its ``clean`` need not expect lists), blank
    text is empty as for text fields, and its ValueError is the message shown."""
    assert f.plugin is not None
    if isinstance(raw, list | dict):
        raise Rejected("invalid")
    if isinstance(raw, str) and not raw.strip():
        return None
    try:
        return clean_value(f.plugin, raw)
    except ValueError as exc:
        raise Rejected("plugin", message=str(exc) or MESSAGES["invalid"].en) from None


def expression_values(form: Form, data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values -> what expressions see (dates become timestamps)."""
    scope: dict[str, Any] = {}
    for f in form.fields:
        scope[f.name] = _for_expression(f, data.get(f.name))
    return scope


def recompute(form: Form, data: Mapping[str, Any], names: Mapping[str, Any]
              ) -> dict[str, Any]:
    """``data`` with its computed fields evaluated again (after an action set a field)."""
    out = dict(data)
    compute(form, out, {**names, **expression_values(form, out)})
    return {k: v for k, v in out.items() if v is not None}  # empty is not stored


def compute(form: Form, typed: dict[str, Any], scope: dict[str, Any]) -> None:
    """Evaluate the computed fields in dependency order: the stored value into
    ``typed``, what expressions see into ``scope`` (for the fields after it)."""
    for f in computed_order(form):
        assert f.value is not None
        try:
            value = f.value.evaluate(scope)
        except ExprError:
            value = None
        typed[f.name] = stored(value)
        scope[f.name] = value


def computed_order(form: Form) -> list[Field]:
    """Computed fields, each after the computed fields it reads (no cycles: checked at load)."""
    computed = {f.name: f for f in form.fields if f.value is not None}
    done: list[Field] = []
    seen: set[str] = set()

    def visit(f: Field) -> None:
        if f.name in seen:
            return
        seen.add(f.name)
        assert f.value is not None
        for dep in sorted(f.value.names & computed.keys()):
            visit(computed[dep])
        done.append(f)

    for f in computed.values():
        visit(f)
    return done


def _for_expression(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "date":
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
    if f.type == "datetime":
        return _datetime(value)
    if f.type == "group":
        return [{sub.name: _for_expression(sub, row.get(sub.name)) for sub in f.fields}
                for row in value]
    return value


def stored(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _error(out: Outcome, path: str, f: Field | None, rule: str, lang: str, **params: Any) -> None:
    custom_key = {"selected": "choices", "email": "invalid", "phone": "invalid",
                  "integer": "invalid", "number": "invalid", "boolean": "invalid",
                  "date": "invalid", "datetime": "invalid", "file": "invalid",
                  "plugin": "invalid"}.get(rule, rule)
    text = f.messages.get(custom_key) if f is not None else None
    if rule == "plugin" and text is None:  # the plugin's own words (one language)
        out.errors.setdefault(path, []).append(str(params["message"]))
        return
    message = (text or MESSAGES[rule]).get(lang)
    try:
        message = message.format(**params)
    except (KeyError, IndexError, ValueError):
        pass
    out.errors.setdefault(path, []).append(message)


def _length(f: Field, value: str) -> None:
    low, high = f.min_length or 0, f.max_length
    if len(value) < low or (high is not None and len(value) > high):
        raise Rejected("length", low=low, high=high if high is not None else "∞")


def _pattern(f: Field, value: str) -> None:
    if f.pattern and not re.fullmatch(f.pattern, value):
        raise Rejected("pattern")


def _bounds(value: Any, low: Any, high: Any) -> None:
    if low is not None and value < low:
        raise Rejected("min", limit=low)
    if high is not None and value > high:
        raise Rejected("max", limit=high)


def _iso(limit: Any) -> str | None:
    return str(limit)[:10] if limit is not None else None


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise Rejected("integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", raw):
        return int(raw)
    raise Rejected("integer")


def _decimal(raw: Any) -> float:
    if isinstance(raw, bool):
        raise Rejected("number")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise Rejected("number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise Rejected("number")
    return number


def _date(raw: Any) -> dt.date:
    """``YYYY-MM-DD``, or the day of an ISO date and time (what a timestamp maps onto)."""
    if not isinstance(raw, str):
        raise Rejected("date")
    text = raw.strip()
    try:
        if len(text) > 10:
            dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text[:10]):
            raise ValueError(text)
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise Rejected("date") from None


def _datetime(raw: Any) -> dt.datetime:
    if not isinstance(raw, str):
        raise Rejected("datetime")
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Rejected("datetime") from None
    if moment.tzinfo is None:
        raise Rejected("datetime")
    return moment.astimezone(dt.UTC)


def _phone(f: Field, raw: Any, region: str) -> str:
    if not isinstance(raw, str):
        raise Rejected("phone")
    try:
        number = phonenumbers.parse(raw, f.region or region)
    except phonenumbers.NumberParseException:
        raise Rejected("phone") from None
    if not phonenumbers.is_valid_number(number):
        raise Rejected("phone")
    value: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    _pattern(f, value)
    return value


def _files(f: Field, raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise Rejected("invalid")
    if f.max_files is not None and len(raw) > f.max_files:
        raise Rejected("files")
    out = []
    for item in raw:
        name, size, mime = item.get("name"), item.get("size"), item.get("type", "")
        if not isinstance(name, str) or not isinstance(size, int) or not isinstance(mime, str):
            raise Rejected("invalid")
        if (f.max_size is not None and size > f.max_size) or not _accepts(f, name, mime):
            raise Rejected("file")
        out.append({k: v for k, v in item.items() if k in ("name", "size", "type", "id")})
    return out


def _accepts(f: Field, name: str, mime: str) -> bool:
    if not f.accept:
        return True
    for rule in f.accept:
        if rule.startswith(".") and name.lower().endswith(rule.lower()):
            return True
        if rule.endswith("/*") and mime.startswith(rule[:-1]):
            return True
        if rule == mime:
            return True
    return False


def _rows(f: Field, raw: Any, *, region: str, lang: str, out: Outcome, path: str,
          names: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise Rejected("invalid")
    low, high = f.min_rows or 0, f.max_rows
    if len(raw) < low or (high is not None and len(raw) > high):
        raise Rejected("rows", low=low, high=high if high is not None else "∞")
    rows = []
    for i, row in enumerate(raw):
        sub = Form(f.name, f.label, None, f.fields, "", "")
        result = clean(sub, row, base=defaults(sub), lang=lang, region=region, names=names)
        for key, messages in result.errors.items():
            out.errors.setdefault(f"{path}[{i}].{key}", []).extend(messages)
        rows.append(result.data)
    return rows
