"""Talking to Fxiaoke's open API: the token, the acting user, and errors that come with HTTP 200.

Every call is a JSON POST whose body carries ``corpAccessToken`` and ``corpId`` (and, for CRM
calls, ``currentOpenUserId``); success and failure both come back as HTTP 200 with an
``errorCode`` in the body (0 = success). Which non-zero codes mean what is reconstructed from
third-party code and notes, not confirmed against the official docs: the codes are settings.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from caseloop.crm import (
    CRMAuthError,
    CRMBadResponse,
    CRMError,
    CRMNotFound,
    CRMPermissionError,
    CRMRateLimited,
    CRMTokenExpired,
    CRMTransientError,
    Token,
    Tokens,
)
from caseloop.crm.errors import excerpt
from caseloop.crm.http import expect, json_of, send, server_error

TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
OPERATOR_PATH = "/cgi/user/getByMobile"
#: Third-party notes put the token's life at 7200 s when the answer does not say.
DEFAULT_EXPIRES_IN = 7200
#: Codes that mean "permission missing" (app not authorised, no quota bought): retrying
#: cannot help, a person must act. From the third-party copy of the code table (unverified).
PERMISSION_CODES = frozenset({15003, 20014, 20020, 20021, 20022, 20023, 30003})
#: Daily allowance used up (30002, "当天访问频次超限"): counted again from midnight in China.
DAILY_CODES = frozenset({30002})
CHINA = ZoneInfo("Asia/Shanghai")


class FxiaokeClient:
    """POSTs to Fxiaoke with the token and acting user, refreshing a refused token once."""

    def __init__(self, settings: Mapping[str, Any], http: httpx.Client, tokens: Tokens) -> None:
        self.base_url = str(settings["base_url"]).rstrip("/")
        self.settings = settings
        self.http = http
        self.tokens = tokens
        self.token_codes = frozenset(int(c) for c in settings["token_error_codes"])
        self.busy_codes = frozenset(int(c) for c in settings["busy_error_codes"])
        self.rate_codes = frozenset(int(c) for c in settings["rate_error_codes"])
        # The acting user, looked up by mobile once per connector (it does not change).
        self._open_user_id: str | None = settings.get("current_open_user_id") or None
        self._lock = threading.Lock()

    # -- the token ------------------------------------------------------------------------
    def mint_token(self) -> Token:
        """Ask Fxiaoke for a corpAccessToken (what ``refresh_token`` does)."""
        body = {"appId": self.settings["app_id"], "appSecret": self.settings["app_secret"],
                "permanentCode": self.settings["permanent_code"]}
        what = f"POST {TOKEN_PATH}"
        try:
            answer = self._answer(self._post_raw(TOKEN_PATH, body), what)
        except CRMTokenExpired as exc:  # a token code from the token endpoint: bad credentials
            raise CRMAuthError(exc.message) from None
        except (CRMRateLimited, CRMTransientError, CRMBadResponse):
            raise
        except CRMError as exc:
            raise CRMAuthError(f"{exc.message}. Fxiaoke refused app_id / app_secret / "
                               "permanent_code: check them, and that the app is still "
                               "authorised for the company") from None
        token = answer.get("corpAccessToken")
        corp_id = answer.get("corpId")
        if not (isinstance(token, str) and token and isinstance(corp_id, str) and corp_id):
            raise CRMBadResponse(f"{what}: no corpAccessToken/corpId in the answer "
                                 f"{_shown(answer)!r}")
        expires_in = answer.get("expiresIn")
        seconds = expires_in if isinstance(expires_in, int) and expires_in > 0 \
            else DEFAULT_EXPIRES_IN
        return Token(access_token=token,
                     expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds),
                     extra={"corpId": corp_id})

    # -- calls ----------------------------------------------------------------------------
    def call(self, path: str, payload: Mapping[str, Any], what: str, *,
             as_user: bool = True) -> dict[str, Any]:
        """POST ``payload`` plus the credentials to ``path``; the answer when errorCode is 0.
        A refused token is refreshed once and the call repeated; refused again, CRMAuthError."""
        user = self.operator() if as_user else None
        token = self.tokens.get()
        try:
            return self._once(token, path, payload, what, user)
        except CRMTokenExpired:
            fresh = self.tokens.refresh(token)
        try:
            return self._once(fresh, path, payload, what, user)
        except CRMTokenExpired as exc:
            raise CRMAuthError(f"{exc.message}; a freshly minted token was refused too. Check "
                               "that the app is still authorised for the company") from None

    def operator(self) -> str:
        """The ``currentOpenUserId`` CRM calls act as: the setting, or looked up once by
        ``operator_mobile`` via /cgi/user/getByMobile and kept on the connector."""
        with self._lock:
            if self._open_user_id:
                return self._open_user_id
        mobile = self.settings.get("operator_mobile")
        if not mobile:
            raise CRMAuthError("set current_open_user_id or operator_mobile: Fxiaoke's CRM calls "
                               "need the employee they act as")
        answer = self.call(OPERATOR_PATH, {"mobile": mobile}, f"POST {OPERATOR_PATH}",
                           as_user=False)
        employees = expect(answer.get("empList"), list, f"POST {OPERATOR_PATH} empList")
        ids = [e.get("openUserId") for e in employees if isinstance(e, dict)]
        found = [i for i in ids if isinstance(i, str) and i]
        if not found:
            raise CRMAuthError(f"Fxiaoke has no employee with the mobile {mobile!r} "
                               "(operator_mobile); set current_open_user_id instead")
        with self._lock:
            self._open_user_id = found[0]
        return found[0]

    def _once(self, token: Token, path: str, payload: Mapping[str, Any], what: str,
              user: str | None) -> dict[str, Any]:
        corp_id = token.extra.get("corpId")
        if not isinstance(corp_id, str) or not corp_id:
            # A token stored without its corpId cannot be used: mint one that has it.
            raise CRMTokenExpired(f"{what}: the stored token has no corpId")
        body: dict[str, Any] = {"corpAccessToken": token.access_token, "corpId": corp_id,
                                **payload}
        if user is not None:
            body["currentOpenUserId"] = user
        return self._answer(self._post_raw(path, body), what)

    def _post_raw(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        raw = json.dumps(body, ensure_ascii=False).encode()
        return send(self.http, "POST", self.base_url + path, content=raw,
                    headers={"Content-Type": "application/json; charset=utf-8"})

    def _answer(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The body of a successful answer, or the error it stands for."""
        status = response.status_code
        if status >= 500:
            raise server_error(response, what)
        if status == 429:  # not documented (Fxiaoke says "errorCode in 200"), but unmistakable
            raise CRMRateLimited(f"{what}: Fxiaoke answered 429")
        if status == 404:
            raise CRMNotFound(f"{what}: Fxiaoke answered 404: the path does not exist; check "
                              f"base_url ({self.base_url})")
        if status != 200:
            # Fxiaoke reports its errors with HTTP 200; anything else is not its API talking
            # (www.fxiaoke.com answers /cgi/ with a 302 to an HTML page).
            raise CRMBadResponse(f"{what}: expected HTTP 200, got {status} "
                                 f"{excerpt(response.content)!r}; check base_url "
                                 f"({self.base_url}, normally https://open.fxiaoke.com)")
        body: dict[str, Any] = expect(json_of(response, what), dict, what)
        code = body.get("errorCode")
        if isinstance(code, str) and code.lstrip("-").isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            raise CRMBadResponse(f"{what}: the answer has no errorCode: {_shown(body)!r}")
        if code == 0:
            return body
        raise self._error(code, body, what)

    def _error(self, code: int, body: Mapping[str, Any], what: str) -> CRMError:
        said = (f"{what}: Fxiaoke answered errorCode {code} "
                f"{str(body.get('errorMessage') or body.get('errorDescription') or '')!r} "
                f"(traceId {body.get('traceId') or '-'})")
        if code in self.token_codes:
            return CRMTokenExpired(said)
        if code in self.rate_codes:
            if code in DAILY_CODES:
                return CRMRateLimited(said + ": the day's API allowance is used up",
                                      retry_after=_until_midnight_in_china(), scope="daily")
            return CRMRateLimited(said + ": too many calls (100 per 20 s per API is the "
                                  "documented limit)")
        if code in self.busy_codes:
            return CRMTransientError(said)
        if code in PERMISSION_CODES:
            return CRMPermissionError(said + ": the app or the acting user lacks a permission "
                                      "or the company's API quota; an administrator must fix it")
        return CRMError(said)


def _until_midnight_in_china(now: dt.datetime | None = None) -> float:
    now = (now or dt.datetime.now(dt.UTC)).astimezone(CHINA)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), CHINA)
    return max(0.0, (midnight - now).total_seconds())


def _shown(body: Mapping[str, Any]) -> str:
    """The answer for a message, the token never shown."""
    safe = {k: ("[redacted]" if k == "corpAccessToken" else v) for k, v in body.items()}
    return excerpt(json.dumps(safe, ensure_ascii=False, default=str))
