"""One field's ruamel node, edited: keys set, added in the house order or removed.

The builder changes a field in place rather than rewriting it, so what it does not
cover survives: its other keys, the author's quote styles and the comment lines between
keys (ruamel hangs those on the value above; they are moved so that they stay above the
same key). A new field is written in the house style of ``forms/complaint.yaml``.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from ..spec.schema import LANGS
from .fields import CONDITIONS, applies, choice, same

__all__ = ["ORDER", "new_node", "set_key", "set_text", "write"]

#: Where the builder puts a key in a field: the house style of forms/complaint.yaml.
ORDER = ("name", "type", "to", "workflow", "of", "roles", "region", "places", "metric",
         "report", "accept", "max_size", "max_files", "required", "default", "min", "max",
         "min_length", "max_length", "min_selected", "max_selected", "pattern", "value",
         "visible_if", "required_if", "readonly_if", "min_rows", "max_rows", "row_label",
         "label", "help", "placeholder", "messages", "choices", "fields")


def new_node(values: dict[str, Any]) -> CommentedMap:
    """A new field in the house style: name, type, rules, conditions, texts, choices."""
    node = CommentedMap()
    for key in ORDER:
        if key in values and applies(key, values["type"]) and not _empty(key, values[key]):
            write(node, key, values[key])
    return node


def write(node: CommentedMap, key: str, value: Any) -> None:
    """Set one covered key of a field (``None``/empty: remove it)."""
    if key in ("label", "help"):
        set_text(node, key, value)
    elif key == "choices":
        _set_choices(node, value)
    elif key in (*CONDITIONS, "pattern") and value is not None:
        set_key(node, key, DoubleQuotedScalarString(value))
    elif key == "default" and isinstance(value, list):
        set_key(node, key, _flow(value))
    elif key in ("name", "type"):
        set_key(node, key, _like(node.get(key), value))
    else:
        set_key(node, key, None if _empty(key, value) else value)


def _empty(key: str, value: Any) -> bool:
    """Left out of the text: nothing, an empty list or text, ``required: false``."""
    return value is None or value == [] or (key == "required" and value is False) or (
        isinstance(value, dict) and not any(value.values()))


def set_key(node: CommentedMap, key: str, value: Any, order: tuple[str, ...] = ORDER) -> None:
    """Set, add (in ``order``) or remove (``None``) one key. ruamel hangs the comment
    lines above a key on the value before it; they are handed over so that they stay
    above the same key."""
    keys = list(node)
    if value is None:
        if key in node:
            rest = _take_rest(node, key)
            del node[key]
            if keys.index(key):
                _give_rest(node, keys[keys.index(key) - 1], rest)
        return
    if key in node:
        rest = _take_rest(node, key)
        node[key] = value
    else:  # after the last key that comes before it in the order
        rank = order.index(key) if key in order else len(order)
        pos = max([i + 1 for i, k in enumerate(keys) if k in order and order.index(k) < rank],
                  default=0)
        rest = _take_rest(node, keys[pos - 1]) if pos else ""
        node.insert(pos, key, value)
    _give_rest(node, key, rest)


def _slot(container: Any, key: Any) -> tuple[Any, Any, int]:
    """Where ruamel keeps the comment after ``container[key]``: with the last scalar."""
    value = container[key]
    if isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
        return _slot(value, list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
    return container, key, 2 if isinstance(container, CommentedMap) else 0


def _take_rest(container: Any, key: Any) -> str:
    """Cut the comment lines after the line of ``container[key]`` out of the tree."""
    holder, at, i = _slot(container, key)
    slot = holder.ca.items.get(at)
    token = slot[i] if slot else None
    if token is None or "\n" not in token.value:
        return ""
    eol, rest = token.value.split("\n", 1)
    if not rest.strip():
        return ""
    if eol.strip():
        token.value = eol + "\n"
    else:
        slot[i] = None
    return str(rest)


def _give_rest(container: Any, key: Any, rest: str) -> None:
    if rest:
        holder, at, i = _slot(container, key)
        slot = holder.ca.items.setdefault(at, [None, None, None, None])
        if slot[i] is None:
            slot[i] = CommentToken("\n" + rest, CommentMark(0), None)
        else:
            slot[i].value += rest


def _like(old: Any, new: Any) -> Any:
    """``new`` quoted as ``old`` was, where the author chose a quote style."""
    for style in (DoubleQuotedScalarString, SingleQuotedScalarString, LiteralScalarString):
        if isinstance(old, style) and isinstance(new, str):
            return style(new)
    return new


def set_text(node: CommentedMap, key: str, text: dict[str, str]) -> None:
    """Set a text key from ``{"en", "zh"}``: one string when both say the same and the
    text was one, else a mapping of the languages given (none: remove the key)."""
    langs = {lang: text[lang] for lang in LANGS if text.get(lang)}
    current = node.get(key)
    if not langs:
        set_key(node, key, None)
    elif isinstance(current, str) and len(langs) == len(LANGS) and len(set(langs.values())) == 1:
        set_key(node, key, _like(current, langs[LANGS[0]]))
    elif isinstance(current, CommentedMap):
        for lang in LANGS:
            set_key(current, lang,
                    _like(current.get(lang), langs[lang]) if lang in langs else None, LANGS)
    else:
        set_key(node, key, CommentedMap(langs))


def _set_choices(node: CommentedMap, choices: list[dict[str, Any]]) -> None:
    old = node.get("choices")
    if not choices:
        set_key(node, "choices", None)
        return
    by_value: dict[str, Any] = {}
    for c in old if isinstance(old, list) else ():
        by_value.setdefault(c if isinstance(c, str) else str(c.get("value")), c)
    seq = CommentedSeq()
    for new in choices:
        prev = by_value.get(new["value"])
        if prev is not None and same(choice(prev), new):
            seq.append(prev)
        elif isinstance(prev, CommentedMap):
            set_text(prev, "label", new["label"])
            seq.append(prev)
        else:
            item = CommentedMap(value=new["value"])
            set_text(item, "label", new["label"])
            seq.append(item)
    if isinstance(old, CommentedSeq) and old.fa.flow_style():
        seq.fa.set_flow_style()
    set_key(node, "choices", seq)


def _flow(values: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(values)
    seq.fa.set_flow_style()
    return seq
