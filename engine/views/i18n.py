"""The pages' words in English and Chinese, the language of a request, and times in
the reader's zone. A plain catalogue: the pages have a few dozen strings, and a
gettext toolchain (extract, compile, ship .mo files) would cost more than it saves.
``tests/test_views_auth.py`` checks that every entry has both languages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, request

LANGUAGES = ("zh", "en")
#: Not strftime's %b: that follows the process's C locale.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: The cookie that remembers the reader's choice (across logins: it is not the session).
COOKIE = "caseloop_lang"

#: key -> (English, Chinese). ``{name}`` placeholders are filled by :func:`text`.
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("Caseloop", "Caseloop"),
    "skip": ("Skip to content", "跳到正文"),
    "language": ("Language", "语言"),
    "home": ("Home", "首页"),
    "jobs": ("Jobs", "任务"),
    "mail_log": ("Mail log", "邮件日志"),
    "signed_in_as": ("Signed in as {name}", "当前用户：{name}"),
    "log_in": ("Log in", "登录"),
    "log_out": ("Log out", "退出"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "required": ("Required.", "必填。"),
    "login_failed": ("Wrong user name or password.", "用户名或密码错误。"),
    "login_throttled": ("Too many failed logins. Try again in {minutes} min.",
                        "登录失败次数过多，请 {minutes} 分钟后再试。"),
    "logged_out": ("You are logged out.", "您已退出。"),
    "login_first": ("Please log in to see this page.", "请先登录。"),
    "csrf_failed": ("The form expired or did not come from this site. Reload the page and "
                    "try again.", "表单已过期或并非来自本站。请刷新页面后重试。"),
    "forbidden": ("Only administrators may see this page.", "只有管理员可以查看此页面。"),
    "not_found": ("There is nothing here.", "此处没有内容。"),
    "bad_request": ("The request was not understood.", "无法理解该请求。"),
    "error": ("Error", "错误"),
    "back_home": ("Back to the home page", "返回首页"),
    "times_in": ("Times are shown in {zone}.", "时间均为 {zone} 时间。"),
    # home
    "hello": ("Hello, {name}", "您好，{name}"),
    "my_open": ("Open cases assigned to me", "分配给我的未结案件"),
    "my_overdue": ("of them overdue", "其中已逾期"),
    "team_queue": ("Unassigned open cases in my teams", "我所在团队中未分配的未结案件"),
    "my_cases": ("My open cases, most recently updated first", "我的未结案件（按最近更新排序）"),
    "no_cases": ("No open cases are assigned to you.", "目前没有分配给您的未结案件。"),
    "reference": ("Reference", "编号"),
    "workflow": ("Workflow", "流程"),
    "state": ("State", "状态"),
    "due": ("Due", "截止"),
    "updated": ("Updated", "更新于"),
    "overdue": ("overdue", "已逾期"),
    "admin": ("Administration", "管理"),
    "dead_letters": ("{n} dead letters need a decision", "{n} 个死信任务待处理"),
    "api_note": ("The case pages are being built; until then the JSON API at {api} "
                 "serves cases (documented in {doc}).",
                 "案件页面正在建设中；在此之前请通过 JSON API（{api}）处理案件，文档见 {doc}。"),
    # jobs
    "all": ("All", "全部"),
    "pending": ("Pending", "待执行"),
    "running": ("Running", "执行中"),
    "done": ("Done", "已完成"),
    "dead": ("Dead", "死信"),
    "cancelled": ("Cancelled", "已取消"),
    "status": ("Status", "状态"),
    "kind": ("Kind", "类型"),
    "case": ("Case", "案件"),
    "run_at": ("Due at", "计划时间"),
    "attempts": ("Attempts", "尝试次数"),
    "last_error": ("Last error", "最后错误"),
    "result": ("Result", "结果"),
    "payload": ("Payload", "内容"),
    "actions": ("Actions", "操作"),
    "filter": ("Filter", "筛选"),
    "any_kind": ("kind, e.g. notify", "类型，例如 notify"),
    "retry": ("Retry", "重试"),
    "discard": ("Discard", "放弃"),
    "confirm_discard": ("Give up job {id} for good?", "确定永久放弃任务 {id} 吗？"),
    "no_jobs": ("No jobs here.", "这里没有任务。"),
    "next_page": ("Next page", "下一页"),
    "first_page": ("First page", "第一页"),
    "retried": ("Job {id} is queued again, due now.", "任务 {id} 已重新排队，立即执行。"),
    "discarded": ("Job {id} is discarded (kept as cancelled).",
                  "任务 {id} 已放弃（保留为已取消）。"),
    "job_missing": ("There is no job {id}.", "不存在任务 {id}。"),
    "job_not_dead": ("Job {id} is {status}: only dead letters can be retried or discarded.",
                     "任务 {id} 的状态为“{status}”：只有死信任务可以重试或放弃。"),
    "bad_cursor": ("That page link is not valid; here is the first page.",
                   "该分页链接无效，已显示第一页。"),
    # mail log
    "mail_intro": ("Emails and text messages to customers, newest first. Without "
                   "CASELOOP_SMTP_URL nothing is sent: this log is where they go.",
                   "发给客户的邮件和短信，最新的在前。未设置 CASELOOP_SMTP_URL 时不会真正发送，"
                   "消息只记录在这里。"),
    "to": ("To", "收件人"),
    "subject": ("Subject", "主题"),
    "body": ("Message", "正文"),
    "when": ("When", "时间"),
    "channel": ("Channel", "渠道"),
    "logged": ("Logged", "已记录"),
    "sent": ("Sent", "已发送"),
    "failed": ("Failed", "失败"),
    "no_mail": ("No messages yet.", "暂无消息。"),
    "older": ("Older messages", "更早的消息"),
    # the customer's survey page (/s/<token>)
    "survey_title": ("Your feedback", "满意度调查"),
    "survey_intro": ("Thank you for taking a minute to tell us how we did.",
                     "感谢您花一分钟告诉我们您的评价。"),
    "survey_case": ("Your case: {reference}", "您的事项编号：{reference}"),
    "survey_once": ("This link can be used once, until {when}.",
                    "此链接仅可使用一次，有效期至 {when}。"),
    "survey_required_note": ("Questions marked “required” must be answered.",
                             "标有“必填”的问题必须作答。"),
    "survey_required": ("required", "必填"),
    "survey_send": ("Send my answers", "提交"),
    "survey_answer_this": ("Please answer this question.", "请回答此问题。"),
    "survey_fix": ("Some answers need your attention:", "以下回答需要您检查："),
    "survey_resend": ("This page was open for a while: please check your answers and "
                      "send them again.", "页面已打开较长时间：请检查您的回答后重新提交。"),
    "survey_max_length": ("Up to {n} characters.", "最多 {n} 个字。"),
    "csat_low": ("Very dissatisfied", "非常不满意"),
    "csat_high": ("Very satisfied", "非常满意"),
    "nps_low": ("Not at all likely", "完全不可能"),
    "nps_high": ("Extremely likely", "极有可能"),
    "ces_low": ("Strongly disagree", "非常不同意"),
    "ces_high": ("Strongly agree", "非常同意"),
    "yes": ("Yes", "是"),
    "no": ("No", "否"),
    "survey_thanks_title": ("Thank you!", "感谢您的反馈！"),
    "survey_thanks": ("Your answers have been recorded. You can close this page now.",
                      "您的回答已记录，现在可以关闭此页面。"),
    "survey_answered_title": ("Already answered", "已经作答"),
    "survey_answered": ("This survey has already been answered. Thank you for your "
                        "feedback!", "此调查已经作答。感谢您的反馈！"),
    "survey_expired_title": ("This link has expired", "链接已过期"),
    "survey_expired": ("This survey link has expired and can no longer be answered. "
                       "Thank you all the same.", "此调查链接已过期，无法再作答。仍然感谢您！"),
    "survey_closed_title": ("This survey is closed", "调查已关闭"),
    "survey_closed": ("This survey is no longer open: we have already followed up in "
                      "another way. Thank you.", "此调查已关闭：我们已通过其他方式跟进。谢谢！"),
    "survey_unknown_title": ("Link not valid", "链接无效"),
    "survey_unknown": ("This survey link is not valid. Please check that the whole link "
                       "was copied from the message.",
                       "此调查链接无效。请确认已从消息中完整复制链接。"),
    # -- the inbox page (keys start with 'inbox_') --
    # -- the case pages (keys start with 'case_') --
}


def text(lang: str, key: str, **values: object) -> str:
    """The message ``key`` in ``lang``; an unknown key shows itself (a visible bug,
    not a crash)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    template = pair[1] if lang == "zh" else pair[0]
    return template.format(**values) if values else template


def request_language() -> str:
    """The reader's choice (cookie), else the browser's (``Accept-Language``), else
    ``CASELOOP_DEFAULT_LANGUAGE``."""
    chosen = request.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    if "Accept-Language" in request.headers:
        found = request.accept_languages.best_match(LANGUAGES)
        if found:
            return found
    default = str(current_app.config["CASELOOP_DEFAULT_LANGUAGE"])[:2].lower()
    return default if default in LANGUAGES else "en"


def zone() -> ZoneInfo:
    return ZoneInfo(str(current_app.config["CASELOOP_TIMEZONE"]))


def when(value: dt.datetime | None, lang: str) -> str:
    """A moment in the configured zone: ``3 May 2026, 14:05`` / ``2026年5月3日 14:05``."""
    if value is None:
        return ""
    if value.tzinfo is None:  # stored as UTC (SQLite keeps naive text)
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(zone())
    if lang == "zh":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"
