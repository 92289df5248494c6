"""Turning a verification report into text for people or JSON for programs."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from fedpetition.core.verification import (
    EVALUATIONS_ABSENT,
    EVALUATIONS_UNUSABLE,
    FLAG_EXCEEDED,
    NO_EVALUATIONS,
    PASS,
    EvaluationReport,
    Flag,
    Report,
    StepResult,
)

_MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def one_line(step: StepResult) -> str:
    """``<step>: log <origin> entry <i>: <reason>``: the failure as one line."""
    where = ""
    if step.log is not None:
        where += f" log {step.log}"
    if step.index is not None:
        where += f" entry {step.index}"
    return f"{step.step}:{where}: {step.detail}" if where else f"{step.step}: {step.detail}"


def flag_line(flag: Flag) -> str:
    """``<flag>: <host>: <detail>``: a flag as one line."""
    where = f" {flag.host}:" if flag.host else ""
    return f"{flag.flag}:{where} {flag.detail}"


def evaluations_to_json(evaluations: EvaluationReport | None) -> dict[str, Any] | None:
    if evaluations is None:
        return None
    return {
        "status": evaluations.status,
        "reason": evaluations.reason,
        "time": evaluations.time,
        "hosts": [
            {"host": h.host, "sign_entries": h.sign_entries, "nullifiers": h.nullifiers,
             "served": h.served, "flagged": h.flagged}
            for h in evaluations.hosts
        ],
    }


def report_to_json(report: Report) -> dict[str, Any]:
    tally = report.tally
    return {
        "ok": report.ok,
        "petition": report.petition,
        "origin_key": report.origin_key,
        "versions": report.versions,
        "witness_quorum": report.quorum,
        "excluded": report.excluded,
        "steps": [
            {k: v for k, v in (("step", s.step), ("status", s.status), ("log", s.log),
                               ("index", s.index), ("detail", s.detail)) if v is not None}
            for s in report.steps
        ],
        "logs": [
            {
                "origin": log.origin,
                "host": log.host,
                "key": log.key,
                "tree_size": log.tree_size,
                "root_hash": log.root_hash,
                "cosigners": log.cosigners,
                "entries": log.entries,
                "counted": log.counted,
                "withdrawn": log.withdrawn,
                "duplicates": log.duplicates,
                "ok": log.ok,
            }
            for log in report.logs
        ],
        "tally": None if tally is None else {
            "total": tally.total,
            "duplicates": tally.duplicates,
            "shared": [{"first": a, "also": b, "count": n}
                       for (a, b), n in sorted(tally.shared.items())],
            "per_node": {c.host: c.counted for c in tally.logs},
            "regions": dict(sorted(tally.regions.items())),
            "no_region": tally.no_region,
            "versions": {str(k): v for k, v in sorted(tally.versions.items())},
        },
        "evaluations": evaluations_to_json(report.evaluations),
        "flags": [
            {k: v for k, v in (("flag", f.flag), ("host", f.host), ("detail", f.detail))
             if v is not None}
            for f in report.flags
        ],
    }


def print_json(report: Report, out: TextIO) -> None:
    json.dump(report_to_json(report), out, indent=2, ensure_ascii=False)
    out.write("\n")


def print_text(report: Report, out: TextIO) -> None:
    out.write(f"petition    {report.petition or '?'}\n")
    if report.origin_key:
        out.write(f"origin key  {report.origin_key}\n")
    out.write("\n")
    width = max((len(s.step) for s in report.steps), default=10)
    for step in report.steps:
        where = f" [{step.log.split('/', 1)[0]}]" if step.log else ""
        index = f" entry {step.index}" if step.index is not None else ""
        out.write(f"{_MARK[step.status]}  {step.step:<{width}}{where}{index}  {step.detail}\n")
    if report.logs:
        out.write("\nlogs\n")
        for log in report.logs:
            size = "?" if log.tree_size is None else f"{log.tree_size:,}"
            counted = "-" if log.counted is None else f"{log.counted:,}"
            out.write(f"  {log.host:<24} size {size:>11}  counted {counted:>11}  "
                      f"root {log.root_hash or '?'}\n")
    tally = report.tally
    if tally is not None:
        out.write("\ntally\n")
        out.write(f"  federated total   {tally.total:,}\n")
        out.write(f"  counted on two or more nodes, once: {tally.duplicates:,}\n")
        for count in tally.logs:
            out.write(f"  {count.host:<24} {count.counted:>11,} counted, "
                      f"{count.withdrawn:,} withdrawn, {count.duplicates:,} also counted "
                      "on an earlier node\n")
        for (earlier, later), shared in sorted(tally.shared.items()):
            out.write(f"  shared by {earlier} and {later}: {shared:,} (counted on {earlier})\n")
        regions = ", ".join(f"{r} {n:,}" for r, n in sorted(tally.regions.items()))
        out.write(f"  regions           {regions or '-'}; no region {tally.no_region:,}\n")
        versions = ", ".join(f"v{v} {n:,}" for v, n in sorted(tally.versions.items()))
        out.write(f"  by text version   {versions}\n")
    _print_evaluations(report, out)
    out.write("\n")
    if report.ok:
        out.write(f"OK: all {len(report.steps)} steps passed\n")
    else:
        failed = report.failures
        first = failed[0] if failed else next(s for s in report.steps if s.status != PASS)
        out.write(f"FAILED: {one_line(first)}\n")
    for flag in report.flags:
        out.write(f"FLAGGED: {flag_line(flag)}\n")


def _print_evaluations(report: Report, out: TextIO) -> None:
    """The origin's evaluation counts against each host's entries (spec §11.9)."""
    evaluations = report.evaluations
    if evaluations is None:
        return
    out.write("\nevaluations\n")
    if evaluations.status == EVALUATIONS_ABSENT:
        out.write(f"  {NO_EVALUATIONS}\n")
        return
    if evaluations.status == EVALUATIONS_UNUSABLE:
        out.write(f"  unusable: {evaluations.reason}\n")
    else:
        when = "?" if evaluations.time is None else time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(evaluations.time))
        out.write(f"  counted by the origin at {when}\n")
        out.write(f"  {'host':<24} {'sign entries':>12} {'nullifiers':>11} / "
                  "evaluations served\n")
        for row in evaluations.hosts:
            entries = "-" if row.sign_entries is None else f"{row.sign_entries:,}"
            signed = "-" if row.nullifiers is None else f"{row.nullifiers:,}"
            mark = f"  FLAGGED {FLAG_EXCEEDED}" if row.flagged else ""
            out.write(f"  {row.host:<24} {entries:>12} {signed:>11} / {row.served:,}{mark}\n")
        if not evaluations.hosts:
            out.write("  (no host other than the origin)\n")


class ProgressBar:
    """A one-line progress bar on a terminal; silent when stderr is not a tty."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        fraction = min(1.0, done / total)
        filled = int(fraction * 30)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                          f"{done:,}/{total:,}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
