"""The pages' words in English and Chinese, the language of a request, and times in
the reader's zone. A plain catalogue: the pages have a few dozen strings, and a
gettext toolchain (extract, compile, ship .mo files) would cost more than it saves.
``tests/test_views_auth.py`` checks that every entry has both languages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, g, request

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
    "settings": ("Settings", "设置"),
    "settings_timezone": ("Time zone for the times on these pages",
                          "页面显示时间所用的时区"),
    "settings_default": ("The service's ({zone})", "系统默认（{zone}）"),
    "settings_save": ("Save", "保存"),
    "settings_saved": ("Your settings are saved.", "设置已保存。"),
    "settings_bad_zone": ("Choose a time zone from the list.", "请从列表中选择时区。"),
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
    "api_note": ("Programs reach the same cases through the JSON API at {api} "
                 "(documented in {doc}).",
                 "程序可通过 JSON API（{api}）访问同样的案件，文档见 {doc}。"),
    "new_case": ("Open a new case", "新建案件"),
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
    "inbox_title": ("Inbox", "工作台"),
    "inbox_tabs": ("Inbox tabs", "工作台分类"),
    "inbox_tab_mine": ("Mine", "我的案件"),
    "inbox_tab_team": ("Team queue", "团队待领取"),
    "inbox_tab_overdue": ("Overdue", "已逾期"),
    "inbox_tab_due_soon": ("Due soon", "即将到期"),
    "inbox_tab_recent": ("Recently updated", "最近更新"),
    "inbox_filters": ("Filter cases", "筛选案件"),
    "inbox_search": ("Search", "搜索"),
    "inbox_search_hint": ("Reference number, phone or customer name",
                          "案件编号、电话或客户姓名"),
    "inbox_any": ("Any", "全部"),
    "inbox_priority": ("Priority", "优先级"),
    "inbox_customer": ("Customer", "客户"),
    "inbox_customer_hint": ("Customer ID, exactly", "客户编号（精确匹配）"),
    "inbox_clear": ("Clear filters", "清除筛选"),
    "inbox_subject": ("Subject / customer", "主题 / 客户"),
    "inbox_assignee": ("Assignee", "处理人"),
    "inbox_unassigned": ("Unassigned", "未分配"),
    "inbox_claim": ("Claim", "领取"),
    "inbox_claim_case": ("Claim {reference}", "领取 {reference}"),
    "inbox_claimed": ("You took {reference}.", "您已领取 {reference}。"),
    "inbox_taken": ("Someone else took {reference} meanwhile: nothing was changed.",
                    "{reference} 已被他人抢先领取，未做任何更改。"),
    "inbox_closed": ("{reference} is closed: nothing was changed.",
                     "{reference} 已结案，未做任何更改。"),
    "inbox_not_yours": ("{reference} is not in one of your teams' queues, or your role "
                        "may not work it: nothing was changed.",
                        "{reference} 不在您所在团队的待领取队列中，或您的角色无权处理："
                        "未做任何更改。"),
    "inbox_bad_tab": ("There is no such inbox tab.", "工作台中没有这个分类。"),
    "inbox_bad_cursor": ("That page link is not valid. Go back to the inbox and page "
                         "from the start.", "该分页链接无效。请返回工作台从第一页开始浏览。"),
    "inbox_empty_mine": ("No open cases are assigned to you.", "目前没有分配给您的未结案件。"),
    "inbox_empty_team": ("Your teams' queue is empty: nothing to claim.",
                         "团队队列为空，暂无可领取的案件。"),
    "inbox_empty_overdue": ("Nothing is overdue.", "没有逾期的案件。"),
    "inbox_empty_due_soon": ("Nothing is due soon.", "没有即将到期的案件。"),
    "inbox_empty_recent": ("No cases yet.", "暂无案件。"),
    "inbox_empty_filtered": ("No cases match these filters.", "没有符合筛选条件的案件。"),
    # -- the case pages (keys start with 'case_') --
    "case_take": ("Take this case", "接手此案件"),
    "case_taken": ("The case is yours now.", "您已接手此案件。"),
    "case_give_to": ("Give to", "转交给"),
    "case_give": ("Give", "转交"),
    "case_to_queue": ("Back to the team's queue", "退回团队队列"),
    "case_given": ("The case was given to {to}.", "案件已转交给 {to}。"),
    "case_queued": ("The case is back in the team's queue.", "案件已退回团队队列。"),
    "case_forbidden": ("Your roles may not do this.", "您的角色无权执行此操作。"),
    "case_opened": ("Case {reference} opened.", "案件 {reference} 已创建。"),
    "case_new_title": ("New: {workflow}", "新建：{workflow}"),
    "case_new": ("New case", "新建案件"),
    "case_create": ("Open the case", "创建案件"),
    "case_save": ("Save", "保存"),
    "case_cancel": ("Cancel", "取消"),
    "case_required": ("required", "必填"),
    "case_add_row": ("Add a row", "添加一行"),
    "case_remove_row": ("Remove row {n}", "删除第 {n} 行"),
    "case_rows": ("{n} rows", "{n} 行"),
    "case_priority": ("Priority", "优先级"),
    "case_assignee": ("Assignee", "经办人"),
    "case_team": ("Team", "团队"),
    "case_breached": ("SLA breached", "已超时"),
    "case_actions": ("What you can do now", "当前可执行的操作"),
    "case_no_actions": ("No action is possible in this state.", "此状态下没有可执行的操作。"),
    "case_fields": ("Details", "详细信息"),
    "case_no_fields": ("No details recorded yet.", "尚无详细信息。"),
    "case_linked": ("Linked cases", "关联案件"),
    "case_crm": ("CRM", "CRM"),
    "case_crm_case": ("{crm} case", "{crm} 工单"),
    "case_crm_contact": ("{crm} customer", "{crm} 客户"),
    "case_crm_open": ("Open in {crm}", "在 {crm} 中打开"),
    "case_crm_synced": ("synced", "已同步"),
    "case_crm_pending": ("waiting to sync", "等待同步"),
    "case_crm_retrying": ("retrying (the CRM did not answer)", "重试中（CRM 未响应）"),
    "case_crm_failed": ("failed: an administrator must look", "失败：需管理员处理"),
    "case_crm_segment": ("Segment", "客户分群"),
    "case_crm_tier": ("Value tier", "价值等级"),
    "case_crm_stage": ("Lifecycle stage", "生命周期阶段"),
    "case_parent": ("Started from", "来源案件"),
    "case_child": ("Follow-up", "后续案件"),
    "case_history": ("History", "处理记录"),
    "case_comment": ("Comment", "备注"),
    "case_add_comment": ("Add comment", "添加备注"),
    "case_commented": ("Your comment was added.", "备注已添加。"),
    "case_edit_title": ("Edit details", "编辑信息"),
    "case_done": ("Done: {reference} is updated.", "已完成：{reference} 已更新。"),
    "case_saved": ("Saved: {reference} is updated.", "已保存：{reference} 已更新。"),
    "case_not_now": ("This is not possible now: the case is {state}.",
                     "当前无法执行此操作：案件状态为“{state}”。"),
    "case_moved": ("The case has moved to {state} meanwhile, so this step is no longer "
                   "possible. Nothing you entered is lost: it is still below.",
                   "案件在此期间已变为“{state}”，无法再执行此步骤。您填写的内容没有丢失，仍在下方。"),
    "case_stale": ("Someone else changed this case while you were working on it. Your "
                   "input is kept below.",
                   "在您处理期间，其他人修改了此案件。您填写的内容已保留在下方。"),
    "case_changed_since": ("What changed since you opened the form:", "您打开表单后发生的变更："),
    "case_resubmit": ("Check your input against these changes and submit again to apply it "
                      "on top of them.",
                      "请对照上述变更检查您的输入，再次提交即可在此基础上保存。"),
    "case_ev_created": ("Opened ({state})", "创建（{state}）"),
    "case_ev_transition": ("{action}: {source} → {dest}", "{action}：{source} → {dest}"),
    "case_ev_updated": ("Details changed", "信息已修改"),
    "case_ev_comment": ("Comment", "备注"),
    "case_ev_assigned": ("Assigned to {who}", "分配给 {who}"),
    "case_ev_claimed": ("Taken by {who}", "由 {who} 领取"),
    "case_ev_sla": ("SLA {target}", "服务时限 {target}"),
    "case_ev_sla_warned": ("SLA {target}: due soon", "服务时限 {target}：即将到期"),
    "case_ev_sla_breached": ("SLA {target}: breached", "服务时限 {target}：已超时"),
    "case_ev_action": ("Automatic action", "自动操作"),
    "case_ev_crm": ("CRM sync ({push}): {status}", "CRM 同步（{push}）：{status}"),
    "case_ev_other": ("{kind}", "{kind}"),
    # -- attachments (keys start with 'file_') --
    "file_too_large": ("{name}: too large: at most {limit}.", "{name}：文件过大，最大 {limit}。"),
    "file_type": ("{name}: this type is not accepted: {accepted}.",
                  "{name}：不接受此文件类型，可用类型：{accepted}。"),
    "file_too_many": ("Too many files: at most {limit}.", "文件过多：最多 {limit} 个。"),
    "file_remove": ("Remove {name}", "删除 {name}"),
    "file_download": ("Download {name}", "下载 {name}"),
    "file_request_too_large": ("The files sent are too large (at most {limit} in all). "
                               "Go back and attach smaller or fewer files.",
                               "上传的文件过大（合计最多 {limit}）。"
                               "请返回并附加更小或更少的文件。"),
    # -- the public intake page (keys start with 'intake_') --
    "intake_send": ("Send", "提交"),
    "intake_fix": ("Please correct the fields marked below; nothing has been sent yet.",
                   "请修改下方标出的内容；尚未提交。"),
    "intake_resend": ("This page was open for a while: please check what you entered and "
                      "send it again.", "页面已打开较长时间：请检查填写的内容后重新提交。"),
    "intake_honeypot": ("Leave this empty", "请勿填写此项"),
    "intake_privacy": ("We use what you enter only to handle this request and to contact "
                       "you about it.", "您填写的信息仅用于处理此事项并就此与您联系。"),
    "intake_thanks_title": ("Thank you!", "感谢您的反馈！"),
    "intake_thanks": ("We have received your message and will contact you about it.",
                      "我们已收到您的信息，会就此与您联系。"),
    "intake_reference": ("Your reference:", "您的受理编号："),
    "intake_throttled_title": ("Please wait a moment", "请稍候"),
    "intake_throttled": ("Many forms have been sent from your connection. Please try "
                         "again in {minutes} min.", "您的网络已提交了多份表单，请 {minutes} "
                         "分钟后再试。"),
    "intake_missing_title": ("Page not found", "页面不存在"),
    "intake_missing": ("There is no form at this address.", "此地址没有可填写的表单。"),
    # -- the dashboard (keys start with 'dash_') --
    "dash_title": ("Dashboard", "数据看板"),
    "dash_bad_download": ("This download could not be made from these filters; change "
                          "them on the dashboard and try again.",
                          "无法按这些筛选条件生成下载文件，请在看板上调整后重试。"),
    "dash_download": ("Download", "下载"),
    "dash_download_metrics": ("These figures as {fmt}", "以上数据（{fmt}）"),
    "dash_download_cases": ("The cases behind them as {fmt}", "相关案件（{fmt}）"),
    "dash_forbidden": ("Only supervisors and managers (the roles in CASELOOP_METRICS_ROLES) "
                       "may see the dashboard. Ask an administrator for such a role.",
                       "只有主管和经理（CASELOOP_METRICS_ROLES 中的角色）可以查看数据看板。"
                       "如需查看，请联系管理员分配相应角色。"),
    "dash_filters": ("Dashboard filters", "看板筛选"),
    "dash_from": ("From", "开始日期"),
    "dash_to": ("To", "结束日期"),
    "dash_team": ("Team", "团队"),
    "dash_agent": ("Agent", "处理人"),
    "dash_category": ("Category", "问题类型"),
    "dash_segment": ("Customer segment", "客户分群"),
    "dash_any": ("Any", "全部"),
    "dash_all_workflows": ("All workflows", "全部流程"),
    "dash_all_time": ("all time", "全部时间"),
    "dash_group_by": ("Group by", "分组方式"),
    "dash_trend_by": ("Trend by", "趋势周期"),
    "dash_break_down_by": ("Also break down by", "另按维度细分"),
    "dash_unit_day": ("day", "日"),
    "dash_unit_week": ("week", "周"),
    "dash_unit_month": ("month", "月"),
    "dash_unit_quarter": ("quarter", "季度"),
    "dash_dim_workflow": ("workflow", "流程"),
    "dash_dim_team": ("team", "团队"),
    "dash_dim_agent": ("agent", "处理人"),
    "dash_dim_channel": ("channel", "渠道"),
    "dash_dim_category": ("category", "问题类型"),
    "dash_dim_segment": ("segment", "客户分群"),
    "dash_apply": ("Show", "显示"),
    "dash_reset": ("Last 30 days", "最近 30 天"),
    "dash_period": ("{start} to {end}, days in {zone}", "{start} 至 {end}（{zone} 时间）"),
    "dash_fix": ("The dashboard cannot be shown with these filters. Correct them:",
                 "无法按这些筛选条件显示看板，请修改："),
    "dash_bad_from": ("Enter the first day as a date, such as 2026-03-01.",
                      "请按日期格式填写开始日期，例如 2026-03-01。"),
    "dash_bad_to": ("Enter the last day as a date, such as 2026-03-31.",
                    "请按日期格式填写结束日期，例如 2026-03-31。"),
    "dash_from_after_to": ("The first day is after the last day: swap them.",
                           "开始日期晚于结束日期，请对调。"),
    "dash_bad_range": ("These dates are out of range: choose days closer to today.",
                       "日期超出范围，请选择离今天更近的日期。"),
    "dash_bad_team": ("There is no team called '{value}': choose one from the list.",
                      "没有名为“{value}”的团队，请从列表中选择。"),
    "dash_bad_agent": ("There is no user called '{value}': choose one from the list.",
                       "没有名为“{value}”的用户，请从列表中选择。"),
    "dash_bad_text": ("Choose a value from the list (at most 64 characters).",
                      "请从列表中选择（最多 64 个字符）。"),
    "dash_bad_group": ("Choose a grouping from the list.", "请从列表中选择分组方式。"),
    "dash_bad_value": ("This value is not valid: clear it or choose another.",
                       "此值无效，请清除或另选。"),
    "dash_too_many": ("This range has too many periods for a trend (at most {limit}): "
                      "group by a longer period or shorten the range.",
                      "此范围内的周期过多（最多 {limit} 个），请按更长的周期分组或缩短范围。"),
    "dash_kpis": ("Key figures", "关键指标"),
    "dash_nps": ("NPS", "NPS 净推荐值"),
    "dash_csat": ("CSAT", "CSAT 满意度"),
    "dash_csat_mean": ("average rating", "平均评分"),
    "dash_csat_top2box": ("% satisfied (top two answers)", "满意占比（最高两档）"),
    "dash_ces": ("CES", "CES 客户费力度"),
    "dash_response_rate": ("Survey response rate", "问卷回复率"),
    "dash_sla_compliance": ("SLA compliance", "SLA 达标率"),
    "dash_reopen_rate": ("Reopen rate", "重开率"),
    "dash_first_response": ("First response (median)", "首次响应（中位数）"),
    "dash_resolution": ("Resolution (median)", "解决时长（中位数）"),
    "dash_volume": ("Cases", "案件数"),
    "dash_n": ("n = {n}", "n = {n}"),
    "dash_n_ci": ("n = {n}, 95% CI {low} to {high}", "n = {n}，95% 置信区间 {low} 至 {high}"),
    "dash_n_p90": ("n = {n}, p90 {p90}", "n = {n}，p90 {p90}"),
    "dash_ci_col": ("95% CI", "95% 置信区间"),
    "dash_hours": ("{value} h", "{value} 小时"),
    "dash_days": ("{value} d", "{value} 天"),
    "dash_small": ("small sample", "样本量小"),
    "dash_small_hint": ("Small sample: fewer than {minimum} answers or cases, so the "
                        "interval is wide. Read these figures with care.",
                        "样本量小：少于 {minimum} 个回答或案件，置信区间较宽，请谨慎解读。"),
    "dash_trends": ("Trends", "趋势"),
    "dash_by": ("{metric} by {by}", "{metric}（按{by}）"),
    "dash_period_col": ("Period", "周期"),
    "dash_breakdowns": ("Breakdowns", "细分"),
    "dash_none": ("(not set)", "（未填）"),
    "dash_sla_backlog": ("SLA and backlog", "SLA 与积压"),
    "dash_backlog": ("Open cases by age, now", "未结案件账龄（当前）"),
    "dash_age": ("Age", "账龄"),
    "dash_age_<1d": ("under 1 day", "不足 1 天"),
    "dash_age_1-3d": ("1–3 days", "1–3 天"),
    "dash_age_3-7d": ("3–7 days", "3–7 天"),
    "dash_age_7-30d": ("7–30 days", "7–30 天"),
    "dash_age_>30d": ("over 30 days", "超过 30 天"),
    "dash_open_cases": ("Open cases", "未结案件"),
    "dash_plans": ("Improvement plans", "改进计划"),
    "dash_plans_caption": ("Improvement plans opened in the period, by their state now",
                           "本期创建的改进计划（按当前状态）"),
    "dash_plans_count": ("Plans", "计划数"),
    "dash_show_table": ("Show as table", "以表格显示"),
    "dash_chart_hint": ("Chart: {title}. The numbers are in the table below it.",
                        "图表：{title}。具体数字见下方表格。"),
    "dash_no_data": ("No data in this period.", "本期没有数据。"),
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
    return chosen if chosen in LANGUAGES else _browser_or_default()


def customer_language(stored: str | None = None) -> str:
    """A customer's page (survey, intake): the ``?lang=`` they chose, else the case's
    (``stored``), else the browser's, else ``CASELOOP_DEFAULT_LANGUAGE`` — never the
    staff pages' cookie."""
    chosen = request.values.get("lang", "")
    if chosen in LANGUAGES:
        return chosen
    kept = str(stored or "").lower()[:2]
    return kept if kept in LANGUAGES else _browser_or_default()


def _browser_or_default() -> str:
    if "Accept-Language" in request.headers:
        found = request.accept_languages.best_match(LANGUAGES)
        if found:
            return str(found)
    default = str(current_app.config["CASELOOP_DEFAULT_LANGUAGE"])[:2].lower()
    return default if default in LANGUAGES else "en"


def zone() -> ZoneInfo:
    """The reader's time zone (their own setting), else CASELOOP_TIMEZONE."""
    return ZoneInfo(zone_name())


def zone_name() -> str:
    chosen = getattr(g.get("caseloop_user"), "timezone", None)
    if chosen:
        try:
            ZoneInfo(chosen)
            return str(chosen)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # a zone this machine lacks: the install's
    return str(current_app.config["CASELOOP_TIMEZONE"])


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
