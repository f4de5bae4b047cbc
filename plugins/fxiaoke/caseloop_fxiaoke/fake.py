"""A fake Fxiaoke open API for tests and demos: a stateful WSGI app on loopback.

It speaks the request and response shapes the connector relies on (as reconstructed from
third-party code: JSON POSTs with the credentials in the body, every error as HTTP 200 with
an ``errorCode``), and checks what Fxiaoke checks as far as known: a live token and its
corpId, a known acting user, the object's path (custom objects under /custom/), known
fields, required fields, and that lookups point at existing records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from caseloop.crm import InboundRequest, UnsupportedOperation
from caseloop.testing import FAULTS, serve

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SYSTEM_FIELDS = {"_id", "owner", "created_by", "create_time", "last_modified_time",
                 "life_status", "is_deleted", "dataObjectApiName"}
CASE_FIELDS = {"name", "description", "status", "priority", "contact_id", "caseloop_id__c"}
OBJECTS: dict[str, set[str]] = {
    "ContactObj": {"name", "email", "mobile", "tel", "account_id", "segment__c",
                   "value_tier__c", "lifecycle_stage__c"},
    "ActiveRecordObj": {"active_record_content", "related_object_data", "caseloop_id__c"},
}
REQUIRED = {"ContactObj": ("name",), "ActiveRecordObj": ("active_record_content",)}
BAD_TOKEN = (20016, "the cropId,cropAccessToken or authorization is error")
NO_TOKEN = (20017, "corpAccessToken为必填项，不能为空")
BAD_PARAM = 32000  # the code table's "参数错误"; what Fxiaoke really answers here is unknown
OPERATORS = {"EQ", "IN", "GT", "GTE", "LT", "LTE", "LIKE"}


class FakeFxiaoke:
    """The fake, as a context manager: ``with FakeFxiaoke() as fake: fake.url …``."""

    def __init__(self, *, app_id: str = "FSAID_caseloop", app_secret: str = "app-secret",
                 permanent_code: str = "PERMANENT", case_object: str = "CasesObj",
                 employees: Mapping[str, str] | None = None, expires_in: int = 7200) -> None:
        self.credentials = {"appId": app_id, "appSecret": app_secret,
                            "permanentCode": permanent_code}
        self.corp_id = "FSCorp_fake"
        self.case_object = case_object
        #: Employees by mobile: the acting users the fake knows.
        self.employees = dict(employees or {"13800000000": "FSUID_ADMIN"})
        self.expires_in = expires_in
        self.url = ""
        self.token_refreshes = 0
        self.operator_lookups = 0
        #: Every API call as (path, body), tokens included, for tests to inspect.
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fields = {**OBJECTS, case_object: set(CASE_FIELDS)}
        self.records: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in self.fields}
        self._tokens: dict[str, float] = {}
        self._faults: deque[tuple[str, Any]] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._last_ms = 0
        self._closing = threading.Event()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FakeFxiaoke:
        self.url = self._stack.enter_context(serve(self.app))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
        self._stack.close()

    # -- the FakeCRM side -----------------------------------------------------------------
    def add_customer(self, *, name: str, email: str, phone_e164: str,
                     properties: Mapping[str, Any] | None = None) -> str:
        # Chinese mobiles are stored as typed in China: 11 digits without +86.
        mobile = phone_e164[3:] if phone_e164.startswith("+86") else phone_e164
        extra = dict(properties or {})
        with self._lock:
            self.fields["ContactObj"] |= set(extra)
            return self._insert("ContactObj", {"name": name, "email": email,
                                               "mobile": mobile, **extra})

    def cases(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records[self.case_object].values()]

    def activities(self) -> list[Mapping[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records["ActiveRecordObj"].values()]

    def inject(self, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        self._faults.append((fault, None))

    def answer_next(self, error_code: int, message: str = "error") -> None:
        """Answer the next API call with HTTP 200 and this errorCode."""
        self._faults.append(("code", (error_code, message)))

    def touch(self, external_id: str) -> None:
        with self._lock:
            for table in self.records.values():
                if external_id in table:
                    table[external_id]["last_modified_time"] = self._now_ms()
                    return
        raise KeyError(f"no record {external_id!r} in the fake")

    def webhook(self, object_type: str, external_id: str, action: str,
                *, now: dt.datetime) -> InboundRequest:
        raise UnsupportedOperation("Fxiaoke sends no webhooks; the connector polls")

    def expire_tokens(self) -> None:
        """Let every token minted so far expire (as 2 hours passing would)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    # -- the HTTP side --------------------------------------------------------------------
    def app(self, environ: WSGIEnvironment, start_response: StartResponse
            ) -> Iterable[bytes]:
        """The WSGI app."""
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        if request.method != "POST":
            return Response("<html>405</html>", 405, content_type="text/html")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return _error(BAD_PARAM, "请求体不是 JSON")
        if not isinstance(body, dict):
            return _error(BAD_PARAM, "请求体不是 JSON 对象")
        if request.path == "/cgi/corpAccessToken/get/V2":
            return self._mint(body)
        with self._lock:
            self.calls.append((request.path, body))
        if self._faults:
            return self._fault(*self._faults.popleft(), body)
        with self._lock:
            refused = self._check_auth(body)
            if refused is not None:
                return refused
            if request.path == "/cgi/user/getByMobile":
                self.operator_lookups += 1
                found = [{"openUserId": uid, "mobile": m} for m, uid in self.employees.items()
                         if m == body.get("mobile")]
                return _ok(empList=found)
            route = _route(request.path)
            if route is None:
                return Response("<html>404 Not Found</html>", 404, content_type="text/html")
            user = body.get("currentOpenUserId")
            if not user:
                return _error(10010, "缺少参数openUserId")
            if user not in self.employees.values():
                return _error(20012, "openUserId未找到")
            custom, action = route
            data = body.get("data")
            if not isinstance(data, dict):
                return _error(BAD_PARAM, "缺少参数 data")
            return self._data(custom, action, data, user)

    def _mint(self, body: Mapping[str, Any]) -> Response:
        if any(body.get(k) != v for k, v in self.credentials.items()):
            return _error(10006, "the parameter appSecret is missing or illegal")
        token = uuid.uuid4().hex.upper()
        with self._lock:
            self._tokens[token] = time.time() + self.expires_in
            self.token_refreshes += 1
        return _ok(corpAccessToken=token, corpId=self.corp_id, expiresIn=self.expires_in)

    def _check_auth(self, body: Mapping[str, Any]) -> Response | None:
        token = body.get("corpAccessToken")
        if not token:
            return _error(*NO_TOKEN)
        if self._tokens.get(token, 0) < time.time() or body.get("corpId") != self.corp_id:
            return _error(*BAD_TOKEN)
        return None

    def _fault(self, fault: str, arg: Any, body: Mapping[str, Any]) -> Response:
        if fault == "code":
            return _error(*arg)
        if fault == "rate_limit":
            return _error(30004, "秒频次超限")
        if fault == "server_error":
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502,
                            content_type="text/html")
        if fault == "garbage":
            return Response("<!DOCTYPE html><html><title>纷享销客</title>登录</html>", 200,
                            content_type="text/html")
        if fault == "expired_token":
            with self._lock:  # the token really is dead now: a retry with it fails too
                self._tokens.pop(str(body.get("corpAccessToken")), None)
            return _error(*BAD_TOKEN)
        # timeout: longer than the tests' 1 s read timeout, cut short when the fake stops
        self._closing.wait(1.5)
        return _error(-1, "系统繁忙")

    # -- objects --------------------------------------------------------------------------
    def _data(self, custom: bool, action: str, data: dict[str, Any], user: str) -> Response:
        name = (data.get("object_data") or {}).get("dataObjectApiName") \
            if action in ("create", "update") else data.get("dataObjectApiName")
        if name not in self.fields:
            return _error(BAD_PARAM, f"对象 {name} 不存在")
        if str(name).endswith("__c") != custom:
            return _error(BAD_PARAM, f"对象 {name} 不能使用此接口"
                          f"（{'自定义' if custom else '预置'}对象接口）")
        table = self.records[name]
        if action == "query":
            return self._query(table, data.get("search_query_info"))
        if action == "get":
            row = table.get(str(data.get("objectDataId")))
            return _ok(data=row) if row else _error(BAD_PARAM, "数据不存在")
        values = dict(data.get("object_data") or {})
        values.pop("dataObjectApiName", None)
        unknown = set(values) - self.fields[name] - {"_id"}
        if unknown:
            return _error(BAD_PARAM, f"字段不存在: {', '.join(sorted(unknown))}")
        if problem := self._bad_links(values):
            return _error(BAD_PARAM, problem)
        if action == "update":
            row = table.get(str(values.pop("_id", "")))
            if row is None:
                return _error(BAD_PARAM, "数据不存在")
            row.update(values, last_modified_time=self._now_ms())
            return _ok()
        missing = [f for f in REQUIRED.get(name, ("name",)) if not values.get(f)]
        if missing:
            return _error(BAD_PARAM, f"必填字段为空: {', '.join(missing)}")
        rid = self._insert(name, {**values, "owner": [user], "created_by": [user]})
        # The custom-object create documents no dataId in its answer (third-party notes).
        return _ok() if custom else _ok(dataId=rid)

    def _bad_links(self, values: Mapping[str, Any]) -> str | None:
        if "contact_id" in values and values["contact_id"] not in self.records["ContactObj"]:
            return f"查找关联字段 contact_id 的数据不存在: {values['contact_id']}"
        for link in values.get("related_object_data") or []:
            if not isinstance(link, dict) or link.get("id") not in self.records.get(
                    str(link.get("describe_api_name")), {}):
                return f"关联对象数据不存在: {link}"
        return None

    def _query(self, table: Mapping[str, dict[str, Any]], info: Any) -> Response:
        if not isinstance(info, dict):
            return _error(BAD_PARAM, "缺少参数 search_query_info")
        limit, offset = info.get("limit"), info.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return _error(BAD_PARAM, "limit 必须在 1 到 100 之间")
        if not isinstance(offset, int) or offset % limit or offset > 10000:
            return _error(10013, "offset 必须是 limit 的整数倍且不能超过10000")
        rows = list(table.values())
        for flt in info.get("filters") or []:
            if not isinstance(flt, dict) or flt.get("operator") not in OPERATORS or \
                    not isinstance(flt.get("field_values"), list):
                return _error(BAD_PARAM, f"过滤条件不合法: {flt}")
            rows = [r for r in rows if _matches(r.get(flt.get("field_name", "")), flt)]
        for order in reversed(info.get("orders") or []):
            rows.sort(key=lambda r: _key(r.get(order["fieldName"])),
                      reverse=not order.get("isAsc", True))
        page = rows[offset:offset + limit]
        return _ok(data={"dataList": [dict(r) for r in page], "totalSize": len(rows)})

    def _insert(self, name: str, values: Mapping[str, Any]) -> str:
        rid = f"{next(self._ids):024x}"  # 24 hex digits, as Fxiaoke's ids look
        now = self._now_ms()
        self.records[name][rid] = {**values, "_id": rid, "create_time": now,
                                   "last_modified_time": now, "life_status": "normal"}
        return rid

    def _now_ms(self) -> int:
        # Strictly increasing, so every change has a modification time of its own.
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            return self._last_ms


def _route(path: str) -> tuple[bool, str] | None:
    for prefix, custom in (("/cgi/crm/v2/data/", False), ("/cgi/crm/custom/v2/data/", True)):
        action = path.removeprefix(prefix)
        if action != path and action in ("query", "create", "update", "get"):
            return custom, action
    return None


def _matches(value: Any, flt: Mapping[str, Any]) -> bool:
    op, wanted = flt["operator"], [str(v) for v in flt["field_values"]]
    have = [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
    if op in ("EQ", "IN"):
        return any(h in wanted for h in have)
    if op == "LIKE":
        return any(w in h for h in have for w in wanted)
    if not have or not wanted:
        return False
    try:
        left, right = float(have[0]), float(wanted[0])
    except ValueError:
        return False
    return {"GT": left > right, "GTE": left >= right, "LT": left < right,
            "LTE": left <= right}[op]


def _key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _ok(**fields: Any) -> Response:
    return _json({"errorCode": 0, "errorMessage": "OK", "traceId": _trace(), **fields})


def _error(code: int, message: str) -> Response:
    return _json({"errorCode": code, "errorMessage": message, "traceId": _trace()})


def _json(body: Mapping[str, Any]) -> Response:
    # Errors too come with HTTP 200: that is how Fxiaoke answers.
    return Response(json.dumps(body, ensure_ascii=False), 200,
                    content_type="application/json;charset=UTF-8")


def _trace() -> str:
    return f"E-O.fake.{uuid.uuid4().hex[:12]}"
