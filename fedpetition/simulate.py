"""A realistic federation's published logs, generated deterministically.

``simulate`` builds what N nodes co-hosting one petition would publish: their
keys, the origin's signed petition versions and host roster, each node's log of
sign and withdraw entries (some signers on two nodes, some withdrawing), every
checkpoint cosigned by the other nodes, and a manifest whose claims are computed
from the simulation's own bookkeeping (not by verifying). The same seed gives the
same bytes. It uses the same core code a node uses to build its logs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from fedpetition.core import bundle, names, tiles
from fedpetition.core.documents import (
    Host,
    HostRoster,
    PetitionVersion,
    WitnessPolicy,
    sign_petition,
    sign_roster,
)
from fedpetition.core.entries import (
    TIME_GRANULARITY,
    PrivateRecord,
    SignEntry,
    WithdrawEntry,
    commitment,
)
from fedpetition.core.errors import LocalProtocolError
from fedpetition.core.log import LogAppender
from fedpetition.core.merkle import inclusion_proof
from fedpetition.core.notes import SIG_TYPE_COSIGNATURE_V1, Signer, add_signature_lines, cosign
from fedpetition.core.nullifiers import petition_key_pair
from fedpetition.core.receipts import Receipt

T0 = 1_772_323_200  # 2026-03-01T00:00:00Z: the simulated petition opens
DAY = 86_400
SIMULATED_DAYS = 40
REGIONS = ("FR-IDF", "FR-ARA", "FR-OCC", "FR-NAQ", "FR-HDF", "FR-PAC", "FR-BRE", "BE", "CH", "DE")
NULLIFIER_CONTEXT = b"fedpetition-simulated-nullifier/v0\n"

Writer = Callable[[str, bytes], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SimulationSpec:
    nodes: int
    signatures: int
    duplicates: int = 0
    withdrawals: int = 0
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.nodes <= 1000:
            raise LocalProtocolError("--nodes must be between 1 and 1000")
        if self.signatures < 0 or self.duplicates < 0 or self.withdrawals < 0:
            raise LocalProtocolError("counts must not be negative")
        if self.duplicates and self.nodes < 2:
            raise LocalProtocolError("duplicates need at least two nodes")
        if 2 * self.duplicates > self.signatures:
            raise LocalProtocolError("--duplicates can be at most half of --signatures: each "
                                     "duplicate signer makes two of the sign entries")
        if self.withdrawals > self.signatures - 2 * self.duplicates:
            raise LocalProtocolError("--withdrawals can be at most signatures - 2 x duplicates: "
                                     "only signers on a single node withdraw")


@dataclass
class SimulationResult:
    petition: str
    origin_key: str
    expected_total: int
    expected_counts: dict[str, int] = field(default_factory=dict)  # log origin -> counted
    members: int = 0
    receipt: bytes | None = None


def node_names(count: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    if count <= len(letters):
        return [f"node-{letters[i]}.example" for i in range(count)]
    return [f"node-{i + 1}.example" for i in range(count)]


def simulate(spec: SimulationSpec, write: Writer, *, progress: Progress | None = None,
             receipt_for: int | None = 0) -> SimulationResult:
    """Generate the federation's files and pass each to ``write(path, data)``."""
    spec.check()
    rng = random.Random(spec.seed)
    hosts = node_names(spec.nodes)
    signers = {name: Signer(name, rng.randbytes(32)) for name in hosts}
    origin = hosts[0]
    petition_id = f"{origin}/clean-air-{spec.seed}"

    # A simulated origin's VOPRF key, derived from its public key so that the rest of
    # the simulation stays the same for a seed. Simulated nullifiers are not VOPRF
    # outputs (a million evaluations would dominate the run): verifiers treat them as
    # opaque 32-byte values either way (spec §4.4).
    _, oprf_key = petition_key_pair(signers[origin].public_key, petition_id)
    versions = _petition_versions(petition_id, oprf_key)
    documents = [sign_petition(v, signers[origin]) for v in versions]
    digests = [d.digest for d in documents]
    roster = HostRoster(
        petition=petition_id,
        serial=1,
        hosts=tuple(Host(h, signers[h].verifier_key()) for h in hosts),
        policy=WitnessPolicy(
            quorum=max(0, spec.nodes - 1),
            witnesses=tuple(signers[h].verifier_key(SIG_TYPE_COSIGNATURE_V1) for h in hosts),
        ),
    )
    members: list[str] = []

    def emit(path: str, data: bytes) -> None:
        members.append(path)
        write(path, data)

    for h in hosts:
        emit(bundle.key_path(h), (str(signers[h].verifier_key()) + "\n").encode())
    for number, document in enumerate(documents, start=1):
        emit(bundle.version_path(petition_id, number), document.encode())
    emit(bundle.roster_path(petition_id), sign_roster(roster, signers[origin]).encode())

    # Signers: each has a home node; duplicates also sign on a second node;
    # withdrawers (single-node signers only) withdraw later on their home node.
    unique = spec.signatures - spec.duplicates
    sim_key = rng.randbytes(32)
    logs: list[list[tuple[int, int, int]]] = [[] for _ in hosts]  # (time, signer, kind)
    second = set(rng.sample(range(unique), spec.duplicates)) if spec.duplicates else set()
    single = [i for i in range(unique) if i not in second]
    withdrawers = set(rng.sample(single, spec.withdrawals)) if spec.withdrawals else set()
    hours = SIMULATED_DAYS * 24
    homes: list[int] = []
    for signer in range(unique):
        home = rng.randrange(spec.nodes)
        homes.append(home)
        # Most signatures come early: an exponential-ish curve over the period.
        hour = min(hours - 1, int(rng.expovariate(1 / (hours / 6))))
        logs[home].append((T0 + hour * TIME_GRANULARITY, signer, 0))
        if signer in second:
            other = (home + 1 + rng.randrange(spec.nodes - 1)) % spec.nodes
            later = min(hours - 1, hour + rng.randrange(48))
            logs[other].append((T0 + later * TIME_GRANULARITY, signer, 0))
        if signer in withdrawers:
            later = min(hours - 1, hour + 1 + rng.randrange(72))
            logs[home].append((T0 + later * TIME_GRANULARITY, signer, 1))
    regions = [None if rng.random() < 0.1 else rng.choice(REGIONS) for _ in range(unique)]
    if receipt_for is not None and not 0 <= receipt_for < unique:
        receipt_for = None

    result = SimulationResult(petition_id, str(signers[origin].verifier_key()),
                              expected_total=unique - spec.withdrawals)
    total_entries = sum(len(log) for log in logs)
    done = 0
    seal_time = T0 + SIMULATED_DAYS * DAY + DAY
    for position, host in enumerate(hosts):
        entries = sorted(logs[position])
        log_origin = names.log_origin(host, petition_id)
        appender = LogAppender(log_origin)
        hash_tiles: dict[tiles.TileCoord, bytes] = {}
        counted = 0
        receipt_entry: tuple[int, bytes, bytes, bytes] | None = None
        batch: list[bytes] = []
        for time, signer, kind in entries:
            email = f"signer{signer}@mail{signer % 97}.example"
            nullifier = hashlib.sha256(NULLIFIER_CONTEXT + sim_key + petition_id.encode()
                                       + b"\n" + email.encode()).digest()
            digest = digests[1] if time >= versions[1].created else digests[0]
            if kind == 0:
                salt = rng.randbytes(32)
                record = PrivateRecord(petition_id, email, f"Signer {signer}").encode()
                entry = SignEntry(digest, nullifier, commitment(salt, record), time,
                                  region=regions[signer]).encode()
                if signer not in withdrawers:
                    counted += 1
                if signer == receipt_for and homes[signer] == position:
                    receipt_entry = (appender.size + len(batch), entry, salt, record)
            else:
                entry = WithdrawEntry(digest, nullifier, time).encode()
            batch.append(entry)
            if len(batch) == 4096:
                _flush(appender, batch, log_origin, emit, hash_tiles)
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(done, total_entries)
        _flush(appender, batch, log_origin, emit, hash_tiles)
        done += len(batch)
        for path, data in appender.partial_files():
            emit(f"{log_origin}/{path}", data)
        for coord, data in _partial_hash_tiles(appender):
            hash_tiles[coord] = data
        checkpoint = appender.checkpoint()
        note = appender.signed_checkpoint(signers[host])
        body = checkpoint.body()
        lines = [cosign(body, signers[w], seal_time + i) for i, w in enumerate(hosts) if w != host]
        note = add_signature_lines(note, lines)
        emit(bundle.checkpoint_path(log_origin), note.encode())
        result.expected_counts[log_origin] = counted
        if receipt_entry is not None:
            index, entry, salt, record = receipt_entry
            reader = tiles.TileHashReader(checkpoint.size, hash_tiles.__getitem__)
            result.receipt = Receipt(
                petition=petition_id, log=log_origin, log_key=signers[host].verifier_key(),
                quorum=roster.policy.quorum,
                witnesses=tuple(roster.policy.eligible(signers[host].verifier_key())),
                checkpoint=note, index=index, entry=entry,
                proof=tuple(inclusion_proof(index, checkpoint.size, reader)),
                salt=salt, record=record,
            ).encode()
        if progress is not None:
            progress(done, total_entries)

    claims = bundle.Claims(result.expected_total, result.expected_counts)
    manifest = bundle.Manifest(petition_id, tuple(members), claims)
    write(bundle.MANIFEST, manifest.encode())
    result.members = len(members) + 1
    return result


def _flush(appender: LogAppender, batch: list[bytes], log_origin: str, emit: Writer,
           hash_tiles: dict[tiles.TileCoord, bytes]) -> None:
    for path, data in appender.append(batch):
        emit(f"{log_origin}/{path}", data)
        coord = tiles.parse_path(path)
        if coord.kind == "hash":
            hash_tiles[coord] = data


def _partial_hash_tiles(appender: LogAppender) -> list[tuple[tiles.TileCoord, bytes]]:
    return [(c, d) for c, d in
            ((tiles.parse_path(p), d) for p, d in appender.partial_files()) if c.kind == "hash"]


def _petition_versions(petition_id: str, oprf_key: bytes) -> list[PetitionVersion]:
    """Version 1, then a correction two days later (spec §3.2: both count)."""
    title = {"fr": "Pour un air propre dans nos villes", "en": "For clean air in our cities"}
    text_fr = ("Nous demandons des zones à faibles émissions effectives, des transports publics "
               "renforcés et la publication des mesures de qualité de l'air.")
    text_en = ("We ask for effective low-emission zones, better public transport and the "
               "publication of air quality measurements.")
    first = PetitionVersion(
        id=petition_id, version=1, previous=None, languages=("fr", "en"), title=title,
        text={"fr": text_fr, "en": text_en}, addressee="Ministère de la Transition écologique",
        created=T0, deadline=T0 + 90 * DAY, oprf_key=oprf_key,
        thresholds=(10_000, 100_000, 1_000_000),
    )
    second = PetitionVersion(
        id=petition_id, version=2, previous=first.digest, languages=("fr", "en"), title=title,
        text={"fr": text_fr.replace("effectives", "réellement appliquées"), "en": text_en},
        addressee=first.addressee, created=T0 + 2 * DAY, deadline=first.deadline,
        oprf_key=oprf_key, thresholds=first.thresholds,
    )
    return [first, second]
