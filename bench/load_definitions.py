"""B5: load and check 100 definitions; compare with ruamel's own parse time.

    python bench/load_definitions.py [--count 100] [--repeat 5]

Generates COUNT realistic definitions (half forms of ~20 fields with
conditions, half workflows of 9 states, 12 guarded transitions and an SLA)
in a temporary folder, then measures, interleaved and repeated:

- parse: ruamel.yaml round-trip parse of the same files, nothing else (the baseline);
- cold: ``caseloop.spec.check`` with empty caches (parse + schema + build + expressions);
- warm: the same check again with nothing changed (parse skipped by content hash);
- one changed: one file edited, the rest cached.

Prints medians and the ratios against the parse baseline. The gate from
performance.md (B5) is cold <= 3x parse; warm should be a small fraction.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

from caseloop import expr, spec
from caseloop.spec import shape, source

FORM = """\
form: {name}
title: {{en: Intake {i}, zh: 受理单 {i}}}
fields:
  - name: channel
    type: choice
    label: {{en: Channel, zh: 渠道}}
    required: true
    choices:
      - {{value: phone, label: {{en: Phone, zh: 电话}}}}
      - {{value: email, label: {{en: Email, zh: 邮件}}}}
      - {{value: web, label: {{en: Web form, zh: 网页表单}}}}
  - name: priority
    type: choice
    label: {{en: Priority, zh: 优先级}}
    default: normal
    choices: [urgent, high, normal, low]
  - name: severity
    type: integer
    label: {{en: Severity, zh: 严重程度}}
    min: 1
    max: 5
  - name: phone
    type: phone
    label: {{en: Phone, zh: 电话}}
    region: CN
    required_if: "channel == 'phone'"
  - name: email
    type: email
    label: {{en: Email, zh: 邮箱}}
    required_if: "channel == 'email'"
{extra}
  - name: escalate
    type: boolean
    label: {{en: Escalate, zh: 升级}}
    value: "filled(severity) && severity >= 4"
  - name: actions
    type: group
    label: {{en: Actions, zh: 措施}}
    min_rows: 0
    max_rows: 20
    fields:
      - {{name: title, type: text, label: {{en: Title, zh: 标题}}, required: true}}
      - {{name: due, type: date, label: {{en: Due, zh: 截止}}}}
      - name: status
        type: choice
        label: {{en: Status, zh: 状态}}
        choices: [planned, done]
"""
EXTRA = """\
  - name: note_{j}
    type: textarea
    label: {{en: Note {j}, zh: 备注 {j}}}
    visible_if: "severity >= {k} && channel != 'web'"
    max_length: 2000
"""
WORKFLOW = """\
workflow: {name}
title: {{en: Flow {i}, zh: 流程 {i}}}
form: {form}
roles: [agent, supervisor]
start: [agent]
priority_field: priority
states:
  received: {{label: {{en: Received, zh: 已受理}}}}
  assessed:
    label: {{en: Assessed, zh: 已评估}}
    on_enter:
      - timer: {{after: 2d, fire: escalate}}
  working: {{label: {{en: Working, zh: 处理中}}}}
  waiting: {{label: {{en: Waiting, zh: 等待}}, category: paused}}
  escalated: {{label: {{en: Escalated, zh: 已升级}}}}
  resolved:
    label: {{en: Resolved, zh: 已解决}}
    on_enter:
      - notify: {{to: [customer], message: {{en: Solved, zh: 已解决}}}}
  closed: {{label: {{en: Closed, zh: 已关闭}}, final: true}}
  cancelled: {{label: {{en: Cancelled, zh: 已取消}}, final: true}}
  archived: {{label: {{en: Archived, zh: 已归档}}, final: true}}
transitions:
  - {{trigger: assess, from: received, to: assessed, allow: [agent], requires: [severity]}}
  - {{trigger: start, from: assessed, to: working, allow: [agent]}}
  - {{trigger: wait, from: working, to: waiting, allow: [agent]}}
  - {{trigger: resume, from: waiting, to: working, allow: [agent]}}
  - trigger: escalate
    from: [assessed, working]
    to: escalated
    allow: [agent, system]
    guard: {{if: "severity >= 3 || escalate", message: {{en: Too minor, zh: 问题轻微}}}}
  - {{trigger: take_back, from: escalated, to: working, allow: [supervisor]}}
  - trigger: resolve
    from: [working, escalated]
    to: resolved
    allow: [agent, supervisor]
    guard:
      if: "actions.all(a, a.status == 'done')"
      message: {{en: Actions open, zh: 仍有未完成措施}}
  - {{trigger: reopen, from: resolved, to: working, allow: [agent]}}
  - {{trigger: close, from: resolved, to: closed, allow: [agent]}}
  - {{trigger: cancel, from: '*', to: cancelled, allow: [supervisor]}}
  - {{trigger: archive, from: resolved, to: archived, allow: [supervisor]}}
  - {{trigger: drop, from: waiting, to: cancelled, allow: [supervisor]}}
sla:
  policies:
    - name: standard
      targets:
        - name: resolution
          until: [resolved, closed]
          within: {{urgent: 4h, high: 1d, normal: 3d, low: 5d}}
          warn_before: 2h
          escalate:
            - {{after: 0m, notify: ['role:supervisor'], raise_priority: true}}
"""


def generate(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count // 2):
        extra = "".join(EXTRA.format(j=j, k=1 + j % 5) for j in range(12))
        form = folder / f"form_{i:03d}.yaml"
        form.write_text(FORM.format(name=f"form_{i:03d}", i=i, extra=extra), "utf-8")
        flow = folder / f"flow_{i:03d}.yaml"
        flow.write_text(WORKFLOW.format(name=f"flow_{i:03d}", form=f"form_{i:03d}", i=i),
                        "utf-8")
        paths += [form, flow]
    return paths


def clear_caches() -> None:
    source._CACHE.clear()
    shape._CACHE.clear()
    expr.parse.cache_clear()


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = generate(folder, args.count)
        texts = [p.read_text("utf-8") for p in files]
        lines = sum(t.count("\n") for t in texts)
        _, problems = spec.check([folder])
        errors = [p for p in problems if p.is_error]
        if errors:
            print("generated definitions do not check clean:", errors[0].format())
            return 2

        def parse_only() -> None:
            for text in texts:
                YAML(typ="rt", pure=True).load(text)

        def cold() -> None:
            clear_caches()
            spec.check([folder])

        def warm() -> None:
            spec.check([folder])

        changed = files[0]
        original = texts[0]

        def one_changed() -> None:
            stamp = f"\n# edited {time.perf_counter_ns()}\n"
            changed.write_text(original + stamp, "utf-8")
            spec.check([folder])

        runs: dict[str, list[float]] = {"parse": [], "cold": [], "warm": [], "one_changed": []}
        warm()
        for _ in range(args.repeat):  # interleaved: parse, cold, warm, one changed
            runs["parse"].append(timed(parse_only))
            runs["cold"].append(timed(cold))
            runs["warm"].append(timed(warm))
            runs["one_changed"].append(timed(one_changed))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"B5 load definitions: {len(files)} files, {lines} lines, "
          f"{args.repeat} repetitions, Python {platform.python_version()}")
    print()
    print("| run | median ms | vs parse-only |")
    print("|---|---:|---:|")
    for key, label in (("parse", "ruamel parse only (baseline)"),
                       ("cold", "check, cold caches"),
                       ("warm", "check, nothing changed"),
                       ("one_changed", "check, one file changed")):
        print(f"| {label} | {med[key] * 1000:.1f} | {med[key] / med['parse']:.2f}x |")
    ratio = med["cold"] / med["parse"]
    verdict = "PASS" if ratio <= 3.0 else "FAIL"
    print()
    print(f"gate B5: cold check <= 3.00x parse-only: {ratio:.2f}x {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "medians": med, "ratio": ratio,
                                         "files": len(files), "lines": lines}, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
