"""Verification of a petition's published logs (spec §11), step by named step.

:class:`Verification` reads everything through a :class:`~.bundle.FileSource` and
produces a :class:`Report`: one result per step (and per log for the per-log
steps), one summary per log, and the federated :class:`~.tally.Tally`. Each step
is a method that raises :class:`~.errors.VerificationError`; ``run`` records those
by name. The node and the verifier front end both call this code, so the count a
node shows and the count a verifier recomputes cannot drift apart.

Beside the steps, the report compares the nullifiers each host signed in its log
with the evaluations the origin says it served that host (spec §11.9). What it finds there
is a named *flag*, never a failed step: the counts are the origin's word alone,
so they neither void the verification nor change the tally.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from functools import partial

from . import bundle, names, tiles
from .bundle import FileSource, Manifest
from .documents import (
    EvaluationCounts,
    Host,
    HostRoster,
    PetitionVersion,
    SignedDocument,
    open_roster,
    open_versions,
)
from .entries import coarse_time
from .errors import DecodeError, FedPetitionError, VerificationError
from .log import open_log_checkpoint
from .logcheck import (
    ChunkResult,
    ChunkRunner,
    LogMerger,
    PetitionRules,
    chunk_jobs,
    run_serially,
)
from .notes import SIG_TYPE_ED25519, Checkpoint, VerifierKey
from .tally import LogColumns, Tally, TallyBuilder

# spec §11: the steps, in the order they run.
STEP_ARCHIVE = "bundle-archive"
STEP_PETITION = "petition-documents"
STEP_ROSTER = "host-roster"
STEP_KEYS = "node-keys"
STEP_CHECKPOINT = "checkpoint-signature"
STEP_QUORUM = "witness-quorum"
STEP_MEMBERS = "bundle-members"
STEP_ENTRIES = "entry-format"
STEP_TREE = "tree-hashes"
STEP_RULES = "log-rules"
STEP_TALLY = "tally"
STEP_CLAIMS = "manifest-claims"

GLOBAL_STEPS = (STEP_ARCHIVE, STEP_PETITION, STEP_ROSTER, STEP_KEYS)
LOG_STEPS = (STEP_CHECKPOINT, STEP_QUORUM, STEP_ENTRIES, STEP_TREE, STEP_RULES)
STEP_DESCRIPTIONS = {
    STEP_ARCHIVE: "the bundle opens and its manifest decodes",
    STEP_PETITION: "petition versions are signed by the origin and chain together",
    STEP_ROSTER: "the host roster is signed by the origin",
    STEP_KEYS: "published node keys match the roster",
    STEP_CHECKPOINT: "the checkpoint is signed by the log's host",
    STEP_QUORUM: "enough witnesses cosigned the checkpoint",
    STEP_MEMBERS: "the bundle holds exactly the files the checkpoints require",
    STEP_ENTRIES: "every entry is well formed and bound to this petition",
    STEP_TREE: "entries and tiles hash to the checkpoint's root",
    STEP_RULES: "no nullifier is signed twice or withdrawn unsigned in a log",
    STEP_TALLY: "the federated tally is computed over every log",
    STEP_CLAIMS: "the manifest's claimed counts equal the tally",
}

PASS, FAIL, SKIP = "pass", "fail", "skip"

# spec §11.9: flags, raised beside the steps; they change neither outcome nor tally.
FLAG_EXCEEDED = "evaluations-exceeded"
FLAG_UNUSABLE = "evaluations-unusable"
FLAG_DESCRIPTIONS = {
    FLAG_EXCEEDED: "a host's log signs more distinct nullifiers than the evaluations the "
                   "origin says it served that host",
    FLAG_UNUSABLE: "the bundle holds evaluation counts that cannot be used (not signed by "
                   "the origin, malformed, or for another petition)",
}
# spec §11.9: what the report says about the evaluation counts.
EVALUATIONS_ABSENT = "absent"
EVALUATIONS_UNUSABLE = "unusable"
EVALUATIONS_CHECKED = "checked"
NO_EVALUATIONS = "no evaluation counts published"

Progress = Callable[[int, int], None]


@dataclass
class StepResult:
    step: str
    status: str  # pass, fail or skip
    detail: str = ""
    log: str | None = None
    index: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == PASS


@dataclass
class LogReport:
    """What a verifier learned about one log."""

    origin: str
    host: str
    key: str
    tree_size: int | None = None
    root_hash: str | None = None  # base64, as in the checkpoint
    cosigners: list[str] = field(default_factory=list)
    entries: int | None = None
    counted: int | None = None
    withdrawn: int | None = None
    duplicates: int | None = None
    ok: bool = False


@dataclass
class Flag:
    """A named finding beside the steps (spec §11.9): worth a reader's attention, but it
    neither fails the verification nor changes the tally."""

    flag: str
    detail: str
    host: str | None = None


@dataclass
class HostEvaluations:
    """One host's signed nullifiers against the evaluations the origin served it."""

    host: str
    sign_entries: int | None  # None when its log was not checked through (failed)
    nullifiers: int | None  # distinct nullifiers in its sign entries; None likewise
    served: int
    flagged: bool = False  # nullifiers > served


@dataclass
class EvaluationReport:
    """What the verifier made of the origin's evaluation counts (spec §11.9)."""

    status: str  # absent, unusable or checked
    reason: str | None = None  # why the counts are unusable
    time: int | None = None  # the counts' time, once they verified
    hosts: list[HostEvaluations] = field(default_factory=list)  # roster order, no origin


@dataclass
class Report:
    petition: str | None = None
    origin_key: str | None = None
    versions: int = 0
    quorum: int | None = None
    steps: list[StepResult] = field(default_factory=list)
    logs: list[LogReport] = field(default_factory=list)
    tally: Tally | None = None
    excluded: list[str] = field(default_factory=list)
    evaluations: EvaluationReport | None = None  # None: not reached (§11.9)
    flags: list[Flag] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if s.status == FAIL]


@dataclass
class _Log:
    host: Host
    origin: str
    report: LogReport
    checkpoint: Checkpoint | None = None
    failed: bool = False
    signs: int | None = None  # sign entries, once steps 8-10 passed
    nullifiers: int | None = None  # distinct nullifiers in them, likewise


class Verification:
    """One run of the verification procedure over a source (spec §11)."""

    def __init__(
        self,
        source: FileSource,
        *,
        origin_key: VerifierKey | None = None,
        exclude: Collection[str] = (),
        progress: Progress | None = None,
        runner: ChunkRunner | None = None,
    ) -> None:
        self.source = source
        self.pinned_origin_key = origin_key
        self.exclude = set(exclude)
        self.progress = progress
        self.runner = runner or run_serially(source)
        self.report = Report()
        self._members: set[str] = set()
        self._manifest: Manifest | None = None
        self._versions: list[PetitionVersion] = []
        self._digests: dict[bytes, int] = {}
        self._roster: HostRoster | None = None
        self._origin_key: VerifierKey | None = None
        self._logs: list[_Log] = []

    # -- driver ---------------------------------------------------------------

    def run(self) -> Report:
        """Run every step, recording each result; never raises for bad input."""
        for step, method in (
            (STEP_ARCHIVE, self.check_archive),
            (STEP_PETITION, self.check_petition),
            (STEP_ROSTER, self.check_roster),
            (STEP_KEYS, self.check_keys),
        ):
            if not self._record(step, method):
                self._skip_rest(after=step)
                return self.report
        for log in self._logs:
            if log.host.name in self.exclude:
                continue
            if self._record(STEP_CHECKPOINT, partial(self.check_checkpoint, log), log=log):
                self._record(STEP_QUORUM, partial(self.check_quorum, log), log=log)
            else:
                self._add(StepResult(STEP_QUORUM, SKIP, f"{STEP_CHECKPOINT} failed", log.origin))
        if not self._record(STEP_MEMBERS, self.check_members):
            self._skip_rest(after=STEP_MEMBERS)
            return self.report
        logs = [lg for lg in self._active() if not lg.failed and lg.checkpoint is not None]
        sizes = [lg.checkpoint.size if lg.checkpoint is not None else 0 for lg in logs]
        # Signed rows are at most the entries: each log's sort keys are made as it arrives.
        builder = TallyBuilder(self._digests, rows=sum(sizes))
        checked = []
        for log, tally in self._check_all_entries(logs, sizes):
            builder.add_log(log.host.name, tally)
            checked.append(log)
            log.report.ok = True
            log.signs = tally.signs
            log.nullifiers = tally.nullifiers
        federated = builder.finish()
        for log, count in zip(checked, federated.logs, strict=True):
            log.report.entries = count.entries
            log.report.counted = count.counted
            log.report.withdrawn = count.withdrawn
            log.report.duplicates = count.duplicates
        self.check_evaluations()
        if any(lg.failed for lg in self._active()):
            self._add(StepResult(STEP_TALLY, SKIP, "not computed: a log failed verification"))
            self._add(StepResult(STEP_CLAIMS, SKIP, "no tally to compare with"))
            return self.report
        self.report.tally = federated
        self._add(StepResult(STEP_TALLY, PASS, f"{federated.total} signatures counted"))
        self._record(STEP_CLAIMS, self.check_claims)
        return self.report

    def _active(self) -> list[_Log]:
        return [lg for lg in self._logs if lg.host.name not in self.exclude]

    def _add(self, result: StepResult) -> None:
        self.report.steps.append(result)

    def _record(self, step: str, method: Callable[[], str], log: _Log | None = None) -> bool:
        try:
            detail = method()
        except VerificationError as e:
            self._add(StepResult(step, FAIL, e.reason, e.log, e.index))
            if log is not None:
                log.failed = True
            return False
        except FedPetitionError as e:
            self._add(StepResult(step, FAIL, str(e), log.origin if log else None))
            if log is not None:
                log.failed = True
            return False
        self._add(StepResult(step, PASS, detail, log.origin if log else None))
        return True

    def _skip_rest(self, after: str) -> None:
        order = [*GLOBAL_STEPS, STEP_CHECKPOINT, STEP_QUORUM, STEP_MEMBERS, STEP_ENTRIES,
                 STEP_TREE, STEP_RULES, STEP_TALLY, STEP_CLAIMS]
        for step in order[order.index(after) + 1:]:
            if step in LOG_STEPS and self._logs:
                for log in self._active():
                    if not any(s.step == step and s.log == log.origin for s in self.report.steps):
                        self._add(StepResult(step, SKIP, f"{after} failed", log.origin))
            elif step not in LOG_STEPS:
                self._add(StepResult(step, SKIP, f"{after} failed"))

    # -- petition-wide steps --------------------------------------------------

    def _read(self, step: str, path: str, log: str | None = None) -> bytes:
        try:
            return self.source.read(path)
        except FedPetitionError as e:
            raise VerificationError(step, f"cannot read {path}: {e}", log=log) from e

    def check_archive(self) -> str:
        members = list(self.source.members())
        seen: set[str] = set()
        for path in members:
            bundle.check_member_path(path)
            if path in seen:
                raise VerificationError(STEP_ARCHIVE, f"member {path} appears twice")
            seen.add(path)
        self._members = seen
        if bundle.MANIFEST not in seen:
            raise VerificationError(STEP_ARCHIVE, "the bundle has no manifest")
        self._manifest = Manifest.decode(self._read(STEP_ARCHIVE, bundle.MANIFEST))
        self.report.petition = self._manifest.petition
        return f"{len(seen)} members, petition {self._manifest.petition}"

    def check_petition(self) -> str:
        assert self._manifest is not None
        petition_id = self._manifest.petition
        origin = names.petition_origin(petition_id)
        key = self._read_key(STEP_PETITION, origin)
        if self.pinned_origin_key is not None and str(key) != str(self.pinned_origin_key):
            raise VerificationError(
                STEP_PETITION, f"origin key {key} is not the expected {self.pinned_origin_key}")
        self._origin_key = key
        self.report.origin_key = str(key)
        documents: list[SignedDocument] = []
        number = 1
        while bundle.version_path(petition_id, number) in self._members:
            data = self._read(STEP_PETITION, bundle.version_path(petition_id, number))
            documents.append(SignedDocument.decode(data))
            number += 1
        if not documents:
            raise VerificationError(STEP_PETITION, "the bundle holds no petition version")
        self._versions = open_versions(documents, petition_id, key)
        digests = [d.digest for d in documents]
        self._digests = {digest: n for n, digest in enumerate(digests, start=1)}
        self.report.versions = len(documents)
        return f"{len(documents)} version(s) signed by {key.name}"

    def _read_key(self, step: str, node: str) -> VerifierKey:
        data = self._read(step, bundle.key_path(node))
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as e:
            raise VerificationError(step, f"key of {node} is not ASCII") from e
        if not text.endswith("\n") or text.count("\n") != 1:
            raise VerificationError(step, f"key file of {node} must be one line")
        key = VerifierKey.parse(text[:-1])
        if key.name != node or key.sig_type != SIG_TYPE_ED25519:
            raise VerificationError(step, f"key file of {node} holds a key for {key.name}")
        return key

    def check_roster(self) -> str:
        assert self._manifest is not None and self._origin_key is not None
        petition_id = self._manifest.petition
        document = SignedDocument.decode(self._read(STEP_ROSTER, bundle.roster_path(petition_id)))
        roster = open_roster(document, petition_id, self._origin_key)
        unknown = self.exclude - {h.name for h in roster.hosts}
        if unknown:
            raise VerificationError(STEP_ROSTER,
                                    f"cannot exclude {', '.join(sorted(unknown))}: not a host")
        self._roster = roster
        self.report.quorum = roster.policy.quorum
        self.report.excluded = sorted(self.exclude)
        for host in roster.hosts:
            origin = names.log_origin(host.name, petition_id)
            report = LogReport(origin=origin, host=host.name, key=str(host.key))
            self._logs.append(_Log(host, origin, report))
            if host.name not in self.exclude:
                self.report.logs.append(report)
        return (f"serial {roster.serial}: {len(roster.hosts)} host(s), witness quorum "
                f"{roster.policy.quorum} of {len(roster.policy.witnesses)}")

    def check_keys(self) -> str:
        assert self._roster is not None
        for host in self._roster.hosts:
            key = self._read_key(STEP_KEYS, host.name)
            if str(key) != str(host.key):
                raise VerificationError(STEP_KEYS, f"{host.name} publishes {key}, the roster "
                                        f"lists {host.key}")
        return f"{len(self._roster.hosts)} key(s) match the roster"

    # -- per-log steps before reading entries ---------------------------------

    def check_checkpoint(self, log: _Log) -> str:
        assert self._roster is not None
        note = self._read(STEP_CHECKPOINT, bundle.checkpoint_path(log.origin), log.origin)
        try:
            checkpoint, cosigners = open_log_checkpoint(note, log.origin, log.host.key,
                                                        self._roster.policy.witnesses)
        except FedPetitionError as e:
            raise VerificationError(STEP_CHECKPOINT, str(e), log=log.origin) from e
        log.checkpoint = checkpoint
        log.report.tree_size = checkpoint.size
        log.report.root_hash = base64.b64encode(checkpoint.root_hash).decode()
        log.report.cosigners = cosigners
        return f"size {checkpoint.size}, signed by {log.host.name}"

    def check_quorum(self, log: _Log) -> str:
        assert self._roster is not None
        quorum = self._roster.policy.quorum
        cosigners = log.report.cosigners
        if len(cosigners) < quorum:
            raise VerificationError(
                STEP_QUORUM, f"{len(cosigners)} valid cosignature(s), the policy requires {quorum}",
                log=log.origin)
        return f"{len(cosigners)} of {quorum} required: {', '.join(cosigners) or 'none needed'}"

    def check_members(self) -> str:
        assert self._manifest is not None and self._roster is not None
        petition_id = self._manifest.petition
        expected = {bundle.MANIFEST, bundle.key_path(names.petition_origin(petition_id)),
                    bundle.roster_path(petition_id)}
        expected.update(bundle.version_path(petition_id, n)
                        for n in range(1, len(self._versions) + 1))
        if bundle.evaluations_path(petition_id) in self._members:
            expected.add(bundle.evaluations_path(petition_id))  # OPTIONAL (spec §10.1)
        for log in self._logs:
            expected.add(bundle.key_path(log.host.name))
            if log.checkpoint is not None:
                # A log of size s has ceil(s / 256) entry bundles: refuse sizes the
                # bundle cannot hold before listing their files.
                needed = -(-log.checkpoint.size // tiles.TILE_WIDTH)
                if needed > len(self._members):
                    raise VerificationError(
                        STEP_MEMBERS, f"the checkpoint's size {log.checkpoint.size} needs "
                        f"{needed} entry bundles, the bundle has {len(self._members)} files",
                        log=log.origin)
                expected.update(bundle.log_member_paths(log.origin, log.checkpoint.size))
            else:
                # A failed or excluded log: whatever it published is not read.
                prefix = log.origin + "/"
                expected.update(m for m in self._members if m.startswith(prefix))
        missing = sorted(expected - self._members)
        extra = sorted(self._members - expected)
        if missing:
            raise VerificationError(STEP_MEMBERS, f"{len(missing)} file(s) missing, first "
                                    f"{missing[0]}")
        if extra:
            raise VerificationError(STEP_MEMBERS, f"{len(extra)} unexpected file(s), first "
                                    f"{extra[0]}")
        listed = set(self._manifest.members)
        if listed != self._members - {bundle.MANIFEST}:
            raise VerificationError(STEP_MEMBERS, "the manifest does not list exactly the "
                                    "bundle's members")
        return f"{len(self._members)} members, none missing, none extra"

    # -- entries --------------------------------------------------------------

    def _check_all_entries(self, logs: list[_Log], sizes: list[int]
                           ) -> Iterator[tuple[_Log, LogColumns]]:
        """entry-format, tree-hashes and log-rules for ``logs`` (whose checkpoints
        have ``sizes`` entries), chunk by chunk.

        All chunks of all logs go to the runner at once, so workers never wait
        between logs; results come back in order and are merged log by log as
        the returned iterator is read. Only after bundle-members: the chunks of
        a checkpoint that claims an absurd size are never listed.
        """
        rules = PetitionRules(
            earliest={d: coarse_time(self._versions[n - 1].created)
                      for d, n in self._digests.items()},
            deadline=self._versions[-1].deadline,
        )
        jobs = [job for lg, size in zip(logs, sizes, strict=True)
                for job in chunk_jobs(lg.origin, size, rules)]
        return self._merge(logs, rules, sum(sizes), self.runner(jobs))

    def _merge(self, logs: list[_Log], rules: PetitionRules, total: int,
               results: Iterator[ChunkResult]) -> Iterator[tuple[_Log, LogColumns]]:
        done = 0
        for log in self._active():
            if log not in logs:
                for step in (STEP_ENTRIES, STEP_TREE, STEP_RULES):
                    self._add(StepResult(step, SKIP, "an earlier step failed for this log",
                                         log.origin))
                continue
            assert log.checkpoint is not None
            merger = LogMerger(self.source, log.checkpoint)
            chunks = len(chunk_jobs(log.origin, log.checkpoint.size, rules))
            consumed = 0
            try:
                while consumed < chunks:
                    result = next(results)
                    consumed += 1
                    merger.add(result)
                    done += result.job.end - result.job.start
                    if self.progress is not None:
                        self.progress(done, total)
                tally = merger.finish()
            except VerificationError as e:
                self._log_failed(log, e)
                for _ in range(chunks - consumed):  # this log's remaining results
                    next(results, None)
                continue
            self._add(StepResult(STEP_ENTRIES, PASS, f"{log.checkpoint.size} entries well "
                                 "formed", log.origin))
            self._add(StepResult(STEP_TREE, PASS, "root and tiles match", log.origin))
            self._add(StepResult(STEP_RULES, PASS, f"{tally.signs} sign, {tally.withdrawals} "
                                 "withdraw", log.origin))
            yield log, tally

    def _log_failed(self, log: _Log, error: VerificationError) -> None:
        log.failed = True
        order = (STEP_ENTRIES, STEP_TREE, STEP_RULES)
        failed_at = order.index(error.step) if error.step in order else 0
        for i, step in enumerate(order):
            if i < failed_at:
                at = "" if error.index is None else f" at entry {error.index}"
                self._add(StepResult(step, SKIP, f"not completed: {error.step} failed{at}",
                                     log.origin))
            elif i == failed_at:
                self._add(StepResult(step, FAIL, error.reason, error.log, error.index))
            else:
                self._add(StepResult(step, SKIP, f"{error.step} failed", log.origin))

    # -- evaluation counts (spec §11.9) ----------------------------------------

    def check_evaluations(self) -> None:
        """Compare each host's signed nullifiers with the evaluations served to it.

        Never a failed step: an absent document is reported as such, an unusable one
        raises the evaluations-unusable flag (naming why), and a host whose checked
        log signs more distinct nullifiers than it was served evaluations raises
        evaluations-exceeded. An honest host spends one evaluation per confirmed
        signature, so its sign entries, and the fewer nullifiers in them, stay within.
        """
        assert self._manifest is not None and self._origin_key is not None
        petition_id = self._manifest.petition
        path = bundle.evaluations_path(petition_id)
        if path not in self._members:
            self.report.evaluations = EvaluationReport(EVALUATIONS_ABSENT)
            return
        try:
            document = SignedDocument.decode(self.source.read(path))
            document.verify(self._origin_key)
            counts = EvaluationCounts.decode(document.body)
            if counts.petition != petition_id:
                raise DecodeError(f"the counts are for {counts.petition}, not {petition_id}")
        except FedPetitionError as e:
            self.report.evaluations = EvaluationReport(EVALUATIONS_UNUSABLE, reason=str(e))
            self.report.flags.append(Flag(FLAG_UNUSABLE, f"{path}: {e}"))
            return
        origin = names.petition_origin(petition_id)
        rows = []
        for log in self._active():
            if log.host.name == origin:  # its own signers are evaluated locally, uncounted
                continue
            served = counts.served(log.host.name)
            flagged = log.nullifiers is not None and log.nullifiers > served
            rows.append(HostEvaluations(log.host.name, log.signs, log.nullifiers, served,
                                        flagged))
            if flagged:
                self.report.flags.append(Flag(
                    FLAG_EXCEEDED, f"{log.nullifiers} nullifiers signed in {log.signs} sign "
                    f"entries, {served} evaluations served", log.host.name))
        self.report.evaluations = EvaluationReport(EVALUATIONS_CHECKED, time=counts.time,
                                                   hosts=rows)

    def check_claims(self) -> str:
        assert self._manifest is not None and self.report.tally is not None
        claims = self._manifest.claims
        if claims is None:
            return "the manifest makes no claim"
        tally = self.report.tally
        if not self.exclude and claims.total != tally.total:
            raise VerificationError(STEP_CLAIMS, f"the manifest claims {claims.total} signatures, "
                                    f"the logs prove {tally.total}")
        counted = {count.origin: count.counted for count in tally.logs}
        for origin, claimed in claims.logs.items():
            if origin.split("/", 1)[0] in self.exclude:
                continue
            if counted.get(origin) != claimed:
                raise VerificationError(STEP_CLAIMS, f"the manifest claims {claimed} for {origin}, "
                                        f"the log proves {counted.get(origin)}", log=origin)
        if self.exclude:
            return "claims for the logs kept confirmed; the total is not comparable"
        return f"claimed total {claims.total} confirmed"


def unreadable_report(reason: str) -> Report:
    """The report for a source that cannot even be opened: bundle-archive failed."""
    report = Report(steps=[StepResult(STEP_ARCHIVE, FAIL, reason)])
    for step in (STEP_PETITION, STEP_ROSTER, STEP_KEYS, STEP_MEMBERS, STEP_TALLY, STEP_CLAIMS):
        report.steps.append(StepResult(step, SKIP, f"{STEP_ARCHIVE} failed"))
    return report


def verify(
    source: FileSource,
    *,
    origin_key: VerifierKey | None = None,
    exclude: Collection[str] = (),
    runner: ChunkRunner | None = None,
) -> Report:
    """Run the verification procedure (spec §11) over ``source``."""
    return Verification(source, origin_key=origin_key, exclude=exclude, runner=runner).run()


__all__ = [
    "EVALUATIONS_ABSENT", "EVALUATIONS_CHECKED", "EVALUATIONS_UNUSABLE", "FAIL",
    "FLAG_DESCRIPTIONS", "FLAG_EXCEEDED", "FLAG_UNUSABLE", "GLOBAL_STEPS", "LOG_STEPS",
    "NO_EVALUATIONS", "PASS", "SKIP", "STEP_DESCRIPTIONS", "EvaluationReport", "Flag",
    "HostEvaluations", "LogReport", "Report", "StepResult", "Verification",
    "unreadable_report", "verify",
]
