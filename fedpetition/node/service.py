"""What a node does, between its HTTP handlers and its storage.

Handlers decode requests and call these methods; these methods check input,
call the protocol core to build documents and entries, seal personal data
before it reaches storage, and send mail. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fedpetition.core import encoding, names, nullifiers, tiles, voprf
from fedpetition.core.addresses import canonical_mailbox
from fedpetition.core.documents import (
    Host,
    HostRoster,
    PetitionVersion,
    SignedDocument,
    WitnessPolicy,
    sign_petition,
    sign_roster,
)
from fedpetition.core.entries import PrivateRecord, commitment
from fedpetition.core.errors import FedPetitionError, VerificationError
from fedpetition.core.log import open_log_checkpoint
from fedpetition.core.merkle import HashAt, consistency_proof, inclusion_proof
from fedpetition.core.notes import Checkpoint, Signer
from fedpetition.core.receipts import (
    RECEIPT_STEPS,
    STEP_FORMAT,
    STEP_ROSTER,
    Receipt,
    check_consistency,
    check_roster,
    verify_receipt,
)
from fedpetition.core.verification import FAIL, PASS, SKIP
from fedpetition.node import i18n
from fedpetition.node.config import NodeConfig
from fedpetition.node.consented import ConsentKeyError, seal_list
from fedpetition.node.errors import AddressError, NodeError, SealError
from fedpetition.node.keys import DataKey
from fedpetition.node.mail import Mail, Mailer, normalise_email
from fedpetition.node.metrics import Metrics
from fedpetition.node.sequencer import PetitionLog, Sequencer
from fedpetition.node.storage import Organiser, PetitionRecord, SignatureRecord, Storage
from fedpetition.node.storage.base import CONFIRMED, COUNTED, PENDING, WITHDRAWING, WITHDRAWN

log = logging.getLogger("fedpetition.node")

MAX_NAME = 200
PRIVACY_LINK_SECONDS = 24 * 3600
SESSION_SECONDS = 12 * 3600
LOGIN_ATTEMPTS_PER_HOUR = 20
LIMIT_WINDOW = 3600  # rate limits count per hour
# acct:node@<host> names the node itself in WebFinger (federation/documents.py).
RESERVED_SLUGS = frozenset({"node"})
CONSENTED_BATCH = 1000  # signatures opened at a time for the consented list
# The receipt check's step after the roster's: this node's log still holds it.
STEP_STILL_IN_LOG = "receipt-still-in-log"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class InputError(NodeError):
    """The request is malformed or not allowed: a 4xx with this message."""

    def __init__(
        self, message: str, *, status: int = 400, field: str | None = None, code: str = "invalid"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.code = code


class RateLimited(InputError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many requests; try again later", status=429, code="rate_limited")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignatureForm:
    name: str
    email: str
    region: str | None = None
    updates: bool = False  # consents to updates about this petition
    addressee: bool = False  # consents to giving their name to the addressee
    language: str = i18n.DEFAULT


@dataclass(frozen=True)
class PetitionView:
    """A petition as pages and the API show it."""

    record: PetitionRecord
    versions: tuple[PetitionVersion, ...]
    log: PetitionLog
    checkpoint: Checkpoint
    roster: HostRoster
    node: str  # this node's name

    @property
    def latest(self) -> PetitionVersion:
        return self.versions[-1]

    @property
    def count(self) -> int:
        return self.log.stats.count

    @property
    def hosting(self) -> bool:
        """This node is in the petition's roster: its log counts, it may collect."""
        return any(host.name == self.node for host in self.roster.hosts)

    @property
    def federated(self) -> bool:
        """The petition's count spans other nodes' logs: it has several hosts, or
        another node started it."""
        return len(self.roster.hosts) > 1 or not self.record.is_local

    def is_open(self, now: float) -> bool:
        return self.record.is_open and now < self.latest.deadline and self.hosting


@dataclass(frozen=True)
class SignerView:
    signature: SignatureRecord
    petition: PetitionView
    name: str
    email: str


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hash_password(password: str) -> bytes:
    salt = secrets.token_bytes(16)
    return salt + hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def check_password(password: str, stored: bytes) -> bool:
    salt, expected = stored[:16], stored[16:]
    return hmac.compare_digest(hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT), expected)


def _clean_text(value: object, field: str, limit: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field} must be text", field=field)
    text = value.strip()
    if not text or len(text) > limit:
        raise InputError(f"{field} must be 1 to {limit} characters", field=field)
    allowed = "\n\r\t" if multiline else ""
    if any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text):
        raise InputError(f"{field} contains control characters", field=field)
    return text


class Node:
    """One node: its identity, storage, sequencer and mail."""

    def __init__(
        self,
        config: NodeConfig,
        storage: Storage,
        signer: Signer,
        data_key: DataKey,
        mailer: Mailer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.storage = storage
        self.signer = signer
        self.data_key = data_key
        self.mailer = mailer
        self.clock = clock
        self.metrics = Metrics()
        self._versions: dict[tuple[int, int], tuple[PetitionVersion, ...]] = {}
        self._rosters: dict[bytes, HostRoster] = {}
        # Set by fedpetition.node.federation when the node federates (always, once served).
        self.federation: Any = None
        self.sequencer = Sequencer(
            storage, signer, config.sequencer.period_seconds, config.sequencer.max_batch, clock
        )
        self.sequencer.observe = self._observe_batch

    @property
    def name(self) -> str:
        return self.signer.name

    def _observe_batch(self, entries: int, seconds: float) -> None:
        self.metrics.batch_entries.observe(entries)
        self.metrics.batch_seconds.observe(seconds)

    def now(self) -> int:
        return int(self.clock())

    def url(self, path: str) -> str:
        return self.config.node.public_url.rstrip("/") + path

    async def start(self) -> None:
        for petition in await self.storage.petitions():
            await self.sequencer.load(petition)

    # -- organisers -----------------------------------------------------------
    async def create_organiser(self, name: str, password: str) -> str:
        """Create an organiser account; returns its API token (shown once)."""
        name = _clean_text(name, "name", 100)
        if len(password) < 10:
            raise InputError("the password must have at least 10 characters", field="password")
        token = secrets.token_urlsafe(32)
        await self.storage.create_organiser(
            name, hash_password(password), token_hash(token), self.now()
        )
        return token

    async def new_api_token(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        if not await self.storage.set_organiser_token(name, token_hash(token)):
            raise InputError(f"no organiser named {name!r}", status=404)
        return token

    async def organiser_for_token(self, token: str) -> Organiser | None:
        return await self.storage.organiser_by_token(token_hash(token))

    async def login(self, name: str, password: str, client: str = "unknown") -> str | None:
        # Guessing passwords costs a scrypt each, and is limited per client and account.
        await self.limit(f"login-ip:{client}", LOGIN_ATTEMPTS_PER_HOUR)
        await self.limit(f"login-name:{name[:100]}", LOGIN_ATTEMPTS_PER_HOUR)
        organiser = await self.storage.organiser_by_name(name)
        if organiser is None or not check_password(password, organiser.password_hash):
            return None
        session = secrets.token_urlsafe(32)
        await self.storage.create_session(
            token_hash(session), organiser.id, self.now() + SESSION_SECONDS
        )
        return session

    async def organiser_for_session(self, session: str) -> Organiser | None:
        return await self.storage.organiser_by_session(token_hash(session), self.now())

    async def logout(self, session: str) -> None:
        await self.storage.delete_session(token_hash(session))

    # -- petitions ------------------------------------------------------------
    async def create_petition(
        self, organiser: Organiser | None, data: Mapping[str, Any]
    ) -> PetitionView:
        slug = data.get("slug")
        try:
            names.check_slug(slug)
        except FedPetitionError as e:
            raise InputError(str(e), field="slug") from e
        assert isinstance(slug, str)
        if slug in RESERVED_SLUGS:
            raise InputError(f"the name {slug!r} is reserved", field="slug")
        petition_id = f"{self.name}/{slug}"
        version = self._version_from(data, petition_id, 1, None, None)
        roster = HostRoster(
            petition_id, 1, (Host(self.name, self.signer.verifier_key()),), WitnessPolicy(0, ())
        )
        try:
            await self.storage.create_petition(
                slug,
                petition_id,
                organiser.id if organiser else None,
                sign_petition(version, self.signer).encode(),
                sign_roster(roster, self.signer).encode(),
                self.now(),
            )
        except NodeError as e:
            raise InputError(str(e), status=409, field="slug") from e
        return await self.petition(slug)

    async def edit_petition(self, slug: str, data: Mapping[str, Any]) -> PetitionView:
        """A new version: the text changes, earlier signatures keep counting (spec §3.2)."""
        view = await self.petition(slug)
        self._own(view)
        latest = view.latest
        merged = {**latest.to_map(), **{k: v for k, v in data.items() if v is not None}}
        previous = SignedDocument.decode(view.record.versions[-1]).digest
        version = self._version_from(merged, latest.id, latest.version + 1, previous, latest)
        await self.storage.add_version(
            view.record.id,
            version.version,
            sign_petition(version, self.signer).encode(),
            self.now(),
        )
        record = await self.storage.petition_by_slug(slug)
        assert record is not None
        self.sequencer.refresh_versions(record)
        if self.federation is not None:
            await self.federation.petition_changed(record)
        return await self.petition(slug)

    @staticmethod
    def _own(view: PetitionView) -> None:
        if not view.record.is_local:
            raise InputError("only the petition's origin may change it", status=409,
                             code="not_origin")

    def _version_from(
        self,
        data: Mapping[str, Any],
        petition_id: str,
        number: int,
        previous: bytes | None,
        latest: PetitionVersion | None,
    ) -> PetitionVersion:
        languages = data.get("languages") or (list(latest.languages) if latest else None)
        if not isinstance(languages, list | tuple) or not languages:
            raise InputError("languages must be a non-empty list", field="languages")
        title, text = data.get("title"), data.get("text")
        if isinstance(title, str):
            title = {lang: title for lang in languages}
        if isinstance(text, str):
            text = {lang: text for lang in languages}
        if not isinstance(title, Mapping) or not isinstance(text, Mapping):
            raise InputError("title and text are needed for every language", field="title")
        deadline = data.get("deadline")
        if not isinstance(deadline, int) or isinstance(deadline, bool):
            raise InputError("deadline must be a Unix time in seconds", field="deadline")
        now = self.now()
        if number == 1 and deadline <= now:
            raise InputError("the deadline must be in the future", field="deadline")
        thresholds = data.get("thresholds") or []
        if not isinstance(thresholds, list | tuple):
            raise InputError("thresholds must be a list of integers", field="thresholds")
        try:
            version = PetitionVersion(
                id=petition_id,
                version=number,
                previous=previous,
                languages=tuple(languages),
                title={k: _clean_text(v, "title", 300) for k, v in title.items()},
                text={k: _clean_text(v, "text", 50_000, multiline=True) for k, v in text.items()},
                addressee=_clean_text(data.get("addressee"), "addressee", 300),
                created=now,
                deadline=deadline,
                # The petition's VOPRF key is the origin's, fixed by version 1 (spec §4.4).
                oprf_key=latest.oprf_key if latest else self.data_key.oprf_key_pair(
                    petition_id)[1],
                thresholds=tuple(thresholds),
            )
            version.encode()  # values it checks may still not encode (a threshold >= 2**64)
        except InputError:
            raise
        except FedPetitionError as e:
            raise InputError(str(e)) from e
        return version

    async def close_petition(self, slug: str) -> PetitionView:
        view = await self.petition(slug)
        self._own(view)
        await self.storage.close_petition(view.record.id, self.now())
        closed = await self.petition(slug)
        if self.federation is not None:
            await self.federation.petition_changed(closed.record)
        return closed

    async def petitions(self) -> list[PetitionView]:
        return [await self.view_of(record) for record in await self.storage.petitions()]

    async def petition(self, slug: str) -> PetitionView:
        record = await self.storage.petition_by_slug(slug) if isinstance(slug, str) else None
        if record is None:
            raise InputError("no such petition", status=404, code="not_found")
        return await self.view_of(record)

    async def view_of(self, record: PetitionRecord) -> PetitionView:
        key = (record.id, len(record.versions))
        versions = self._versions.get(key)
        if versions is None:  # versions never change once published: decode each once
            versions = tuple(PetitionVersion.decode(SignedDocument.decode(d).body)
                             for d in record.versions)
            self._versions[key] = versions
        log_state = await self.sequencer.load(record)
        if self.storage.shared and not self.sequencer.leading:
            # Another process sequences: what this one serves must never be older than
            # what another already served, so it is read from storage each time.
            await self.sequencer.catch_up(log_state)
        checkpoint = log_state.checkpoint
        return PetitionView(record, versions, log_state, checkpoint, self.roster(record),
                            self.name)

    def roster(self, record: PetitionRecord) -> HostRoster:
        """The petition's current host roster (stored signed documents are trusted)."""
        roster = self._rosters.get(record.roster)
        if roster is None:
            roster = HostRoster.decode(SignedDocument.decode(record.roster).body)
            self._rosters[record.roster] = roster
        return roster

    # -- signing --------------------------------------------------------------
    async def limit(self, key: str, limit: int) -> None:
        """Count one event against an hourly limit, shared by the node's processes.

        Keys name client addresses and login names: storage only sees them keyed-hashed
        (a shared counter table outlives requests, and backups copy it).
        """
        now = self.now()
        hashed = self.data_key.mac(b"rate-limit", key.encode()).hex()[:32]
        if await self.storage.count_event(hashed, LIMIT_WINDOW, now) > limit:
            raise RateLimited(LIMIT_WINDOW - now % LIMIT_WINDOW)

    async def sign(self, slug: str, form: SignatureForm, client: str) -> None:
        """Start a signature; the outcome looks the same whether or not the email signed."""
        view = await self.petition(slug)
        if not view.is_open(self.clock()):
            raise InputError("this petition is closed", status=409, code="closed")
        name = _clean_text(form.name, "name", MAX_NAME)
        try:
            email = normalise_email(form.email)
        except AddressError as e:
            raise InputError(str(e), field="email") from e
        region = None
        if form.region:
            try:
                region = names.check_region(form.region.strip().upper())
            except FedPetitionError as e:
                raise InputError(
                    "region must be an ISO 3166 code such as FR or FR-IDF", field="region"
                ) from e
        limits = self.config.limits
        await self.limit(f"sign-ip:{client}", limits.sign_per_ip_per_hour)
        domain = email.rpartition("@")[2]  # normalised: lower-case ASCII
        await self.limit(f"sign-domain:{domain}", limits.sign_per_email_domain_per_hour)
        petition_id = view.record.petition_id
        # Keyed on the canonical mailbox (spec §4.6): an alias of an address that
        # signed finds its row. Mail still goes to the address as typed.
        index = self.data_key.email_index(petition_id, canonical_mailbox(email))
        sealed = self.data_key.seal(
            encoding.encode(
                {
                    "name": name,
                    "email": email,
                    "salt": secrets.token_bytes(32),
                    "updates": bool(form.updates),
                    "addressee": bool(form.addressee),
                    "language": form.language if form.language in i18n.LANGUAGES else i18n.DEFAULT,
                }
            ),
            _seal_context(petition_id, index),
        )
        token = secrets.token_urlsafe(32)
        now = self.now()
        expires = now + limits.pending_expiry_hours * 3600
        created = await self.storage.create_pending(
            view.record.id, index, sealed, region, token_hash(token), now, expires
        )
        language = form.language if form.language in i18n.LANGUAGES else i18n.DEFAULT
        title = view.latest.title.get(language) or next(iter(view.latest.title.values()))
        link = self.url(f"/s/{token}")
        if created is not None:
            await self._mail(
                email,
                language,
                "mail.confirm",
                link,
                title=title,
                name=name,
                hours=limits.pending_expiry_hours,
            )
            return
        existing = await self.storage.signature_by_index(view.record.id, index)
        if existing is None:  # erased in between: nothing to tell
            return
        await self.storage.rotate_token(
            existing.id, token_hash(token), now, expires if existing.status == PENDING else None
        )
        key = "mail.confirm" if existing.status == PENDING else "mail.already"
        await self._mail(
            email, language, key, link, title=title, name=name, hours=limits.pending_expiry_hours
        )

    async def _mail(self, to: str, language: str, key: str, link: str, **values: object) -> None:
        values = {"node": self.name, "link": link, **values}
        await self.mailer.send(
            Mail(
                to=to,
                subject=i18n.t(language, f"{key}.subject", **values),
                text=i18n.t(language, f"{key}.body", **values),
                links=(link,),
            )
        )

    async def signer_view(self, token: str) -> SignerView:
        return (await self._signer(token))[0]

    async def _signer(self, token: str) -> tuple[SignerView, dict[str, Any]]:
        """The signature a link's token names, with its opened private record."""
        record = (
            await self.storage.signature_by_token(token_hash(token))
            if isinstance(token, str) and 0 < len(token) < 100
            else None
        )
        if record is None or record.sealed is None:
            raise InputError("this link is not valid (any more)", status=404, code="not_found")
        petition = await self.storage.petition_by_id(record.petition)
        assert petition is not None
        view = await self.view_of(petition)
        private = self._open(record, petition.petition_id)
        return SignerView(record, view, private["name"], private["email"]), private

    def _open(self, record: SignatureRecord, petition_id: str) -> dict[str, Any]:
        assert record.sealed is not None
        # The context binds the sealed data to its row (petition and email index):
        # sealed data copied into another row does not open.
        context = _seal_context(petition_id, record.email_index)
        try:
            return encoding.decode_map(self.data_key.open(record.sealed, context),
                                       "sealed signature")
        except (SealError, FedPetitionError) as e:
            raise NodeError("a stored signature does not open with this node's data key") from e

    async def confirm(self, token: str, client: str = "unknown") -> SignerView:
        await self.limit(f"confirm-ip:{client}", self.config.limits.confirm_per_ip_per_hour)
        view, private = await self._signer(token)
        record = view.signature
        if record.status != PENDING:
            return view
        if record.expires is not None and record.expires <= self.now():
            raise InputError("this link has expired: please sign again", status=410, code="expired")
        if not view.petition.is_open(self.clock()):
            raise InputError("this petition is closed", status=409, code="closed")
        petition_id = view.petition.record.petition_id
        salt = private["salt"]
        record_bytes = PrivateRecord(petition_id, private["email"], private["name"]).encode()
        # The origin evaluates its own signers' nullifiers at once; a host's wait for the
        # origin's blind evaluation (fedpetition.node.federation, spec §4.4).
        nullifier = self.local_nullifier(view.petition.record, private["email"])
        confirmed = await self.storage.confirm(
            record.id,
            token_hash(token),
            self.now(),
            view.petition.latest.version,
            nullifier,
            commitment(salt, record_bytes),
        )
        if not confirmed:  # a concurrent confirmation or withdrawal won: show what is now
            return await self.signer_view(token)
        self.metrics.confirmations.inc()
        if nullifier is None and self.federation is not None:
            self.federation.nullifiers_wanted()
        return dataclasses.replace(
            view, signature=dataclasses.replace(record, status=CONFIRMED, expires=None))

    def signer_email(self, signature: SignatureRecord, petition: PetitionRecord) -> str:
        """The normalised address of a signature (opened from its sealed record)."""
        return str(self._open(signature, petition.petition_id)["email"])

    def local_nullifier(self, record: PetitionRecord, email: str) -> bytes | None:
        """The nullifier of a signer of one of our own petitions; None for a hosted one.

        ``email`` is the signer's normalised address; the input is its canonical
        mailbox (spec §4.4, §4.6), exactly as a host computes it blindly.
        """
        if not record.is_local:
            return None
        secret, _ = self.data_key.oprf_key_pair(record.petition_id)
        return nullifiers.nullifier(voprf.evaluate(secret, nullifiers.nullifier_input(
            record.petition_id, canonical_mailbox(email))))

    async def withdraw(self, token: str) -> SignerView:
        view = await self.signer_view(token)
        if view.signature.status in (CONFIRMED, COUNTED):
            await self.storage.request_withdrawal(
                view.signature.id, token_hash(token), self.now(), view.petition.latest.version
            )
        return await self.signer_view(token)

    async def receipt(self, token: str) -> bytes | None:
        """The signer's receipt (spec §8), or None until their entry is in the log."""
        view = await self.signer_view(token)
        record = view.signature
        if record.log_index is None or record.status not in (COUNTED, WITHDRAWING, WITHDRAWN):
            return None
        petition = view.petition
        petition_id = petition.record.petition_id
        # The receipt carries the checkpoint the node serves: the latest one that met
        # the witness policy. An entry beyond it gets its receipt once witnessed.
        published = petition.log.published
        own_key = self.signer.verifier_key()
        policy = petition.roster.policy
        witnesses = policy.eligible(own_key)
        checkpoint, cosigners = open_log_checkpoint(published, petition.log.origin, own_key,
                                                    witnesses)
        size = checkpoint.size
        index = record.log_index
        if index >= size or len(cosigners) < policy.quorum:
            return None  # not yet witnessed as the petition's current roster requires
        bundle_coord = tiles.TileCoord(
            0,
            index // tiles.TILE_WIDTH,
            min(tiles.TILE_WIDTH, size - index // 256 * 256),
            "entries",
        )
        data = await self.storage.read_file(petition.record.id, bundle_coord.path)
        assert data is not None
        entry = tiles.decode_entry_bundle(data, bundle_coord.width)[index % tiles.TILE_WIDTH]
        proof = await self.log_proof(
            petition.record.id, size, lambda reader: inclusion_proof(index, size, reader))
        private = self._open(record, petition_id)
        return Receipt(
            petition=petition_id,
            log=petition.log.origin,
            log_key=own_key,
            quorum=policy.quorum,
            witnesses=witnesses,
            checkpoint=published.decode(),
            index=index,
            entry=entry,
            proof=tuple(proof),
            salt=private["salt"],
            record=PrivateRecord(petition_id, private["email"], private["name"]).encode(),
        ).encode()

    async def consented_list(self, slug: str, public_key: str) -> tuple[bytes, int]:
        """The names of this node's counted signers who consented to be named to the
        addressee, encrypted to the organiser's ``public_key``; and how many there are.

        Only this node's signers: each hosting node holds its own, and exports them."""
        try:
            seal_list(public_key, [])  # a key that cannot be sealed to fails before the scan
        except ConsentKeyError as e:
            raise InputError(str(e), field="key") from None
        view = await self.petition(slug)
        record = view.record
        rows: list[tuple[str, str | None, int]] = []
        after = 0
        while batch := await self.storage.signatures_of(record.id, COUNTED, after,
                                                        CONSENTED_BATCH):
            for signature in batch:
                private = self._open(signature, record.petition_id)
                if private["addressee"]:
                    rows.append((private["name"], signature.region,
                                 signature.confirmed or signature.created))
            after = batch[-1].id
        try:
            return seal_list(public_key, rows), len(rows)
        except ConsentKeyError as e:
            raise InputError(str(e), field="key") from None

    async def check_receipt(self, data: bytes) -> list[tuple[str, str, str]]:
        """A receipt's checks (spec §8), each as ``(step, status, detail)`` with status
        pass, fail or skip, in order, stopping at the first failure: every offline
        step of ``fedpetition verify-receipt``; then the keys and witness policy the
        receipt carries against the petition's signed roster (§8.2), which a receipt
        cannot vouch for by itself (skipped for a petition this node does not host);
        then, for one of this node's logs, that the log it serves now still holds it."""
        try:
            receipt = Receipt.decode(data)
        except FedPetitionError as e:
            return [(STEP_FORMAT, FAIL, str(e))]
        try:
            checked = verify_receipt(receipt)
        except VerificationError as e:
            failed = e.step
            done = list(itertools.takewhile(lambda step: step != failed, RECEIPT_STEPS))
            return [*((step, PASS, "") for step in done), (failed, FAIL, e.reason)]
        results = [(step, PASS, "") for step in RECEIPT_STEPS]
        record = await self.storage.petition_by_petition_id(receipt.petition)
        if record is None:
            return [*results, (STEP_ROSTER, SKIP, "this node does not host the petition")]
        view = await self.view_of(record)
        try:
            check_roster(receipt, view.roster)
        except VerificationError as e:
            return [*results, (STEP_ROSTER, FAIL, e.reason)]
        results.append((STEP_ROSTER, PASS, ""))
        if receipt.log_key != self.signer.verifier_key():
            return results  # another host's log: its own node checks the rest
        old = checked.checkpoint
        try:
            latest, _ = open_log_checkpoint(view.log.published, view.log.origin,
                                            self.signer.verifier_key(), ())
            if latest.size < old.size:
                raise VerificationError(STEP_STILL_IN_LOG, "the log is now shorter than the "
                                        "receipt's checkpoint")
            proof = await self.log_proof(
                record.id, latest.size, lambda reader: consistency_proof(old.size, latest.size,
                                                                         reader))
            check_consistency(old, latest, proof)
        except FedPetitionError as e:
            return [*results, (STEP_STILL_IN_LOG, FAIL, str(e))]
        return [*results, (STEP_STILL_IN_LOG, PASS, str(latest.size))]

    async def log_proof(self, petition: int, size: int,
                        compute: Callable[[HashAt], list[bytes]]) -> list[bytes]:
        """A Merkle proof over the log at ``size``, computed from stored tiles.

        Which tiles a proof reads follows from its shape alone: a first run of
        ``compute`` over placeholder hashes lists them, and they are read from
        storage together rather than one round trip after another. ``compute``
        then runs on the tiles, again after reading any it still lacks.
        """
        cache: dict[tiles.TileCoord, bytes] = {}

        def read(coord: tiles.TileCoord) -> bytes:
            if coord not in cache:
                raise _Missing(coord)
            return cache[coord]

        await self._read_tiles(petition, tiles.tiles_needed(size, compute), cache)
        reader = tiles.TileHashReader(size, read)
        while True:
            try:
                return compute(reader)
            except _Missing as missing:
                await self._read_tiles(petition, [missing.coord], cache)

    async def _read_tiles(self, petition: int, coords: list[tiles.TileCoord],
                          into: dict[tiles.TileCoord, bytes]) -> None:
        found = await asyncio.gather(*(self.storage.read_file(petition, c.path) for c in coords))
        for coord, data in zip(coords, found, strict=True):
            if data is None:
                raise NodeError(f"log file {coord.path} is missing")
            into[coord] = data

    # -- personal data requests (GDPR art. 15 and 17) -------------------------
    async def privacy_request(self, email: str, client: str, language: str) -> None:
        try:
            address = normalise_email(email)
        except AddressError as e:
            raise InputError(str(e), field="email") from e
        await self.limit(f"privacy-ip:{client}", self.config.limits.sign_per_ip_per_hour)
        sealed = self.data_key.seal(
            encoding.encode({"email": address, "expires": self.now() + PRIVACY_LINK_SECONDS}),
            b"privacy",
        )
        token = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
        await self._mail(address, language, "mail.privacy", self.url(f"/privacy/{token}"))

    def _privacy_email(self, token: str) -> str:
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value = encoding.decode_map(self.data_key.open(sealed, b"privacy"), "privacy link")
        except (binascii.Error, ValueError, SealError, FedPetitionError) as e:
            raise InputError("this link is not valid", status=404, code="not_found") from e
        if value.get("expires", 0) <= self.now():
            raise InputError("this link has expired", status=410, code="expired")
        email = value.get("email")
        if not isinstance(email, str):
            raise InputError("this link is not valid", status=404, code="not_found")
        return email

    async def _records_for(self, email: str) -> list[tuple[PetitionRecord, SignatureRecord]]:
        """Every row of the mailbox of ``email`` (spec §4.6: its aliases share the rows)."""
        petitions = await self.storage.petitions()
        mailbox = canonical_mailbox(email)
        pairs = [(p.id, self.data_key.email_index(p.petition_id, mailbox)) for p in petitions]
        by_id = {p.id: p for p in petitions}
        return [(by_id[r.petition], r) for r in await self.storage.signatures_by_indexes(pairs)]

    async def privacy_export(self, token: str) -> dict[str, Any]:
        email = self._privacy_email(token)
        signatures = []
        for petition, record in await self._records_for(email):
            item: dict[str, Any] = {
                "petition": petition.petition_id,
                "status": record.status,
                "region": record.region,
                "created": record.created,
                "confirmed": record.confirmed,
                "log_index": record.log_index,
            }
            if record.sealed is not None:
                private = self._open(record, petition.petition_id)
                item.update(
                    name=private["name"],
                    email=private["email"],
                    consents={"updates": private["updates"], "addressee": private["addressee"]},
                )
            signatures.append(item)
        return {
            "node": self.name,
            "email": email,
            "signatures": signatures,
            "note": "The public logs hold only anonymous entries (no name, no email).",
        }

    async def privacy_erase(self, token: str) -> int:
        email = self._privacy_email(token)
        records = await self._records_for(email)
        return await self.storage.erase_signatures([r.id for _, r in records])

    # -- maintenance ----------------------------------------------------------
    async def housekeeping(self) -> None:
        """Close petitions past their deadline, purge expired and retained data."""
        now = self.now()
        for view in await self.petitions():
            if view.record.is_open and now >= view.latest.deadline:
                await self.storage.close_petition(view.record.id, view.latest.deadline)
        await self.storage.delete_expired_pending(now)
        await self.storage.purge_closed(now - self.config.retention.days_after_close * 86400)


class _Missing(Exception):
    def __init__(self, coord: tiles.TileCoord) -> None:
        self.coord = coord


def _seal_context(petition_id: str, index: bytes) -> bytes:
    return b"signature\n" + petition_id.encode() + b"\n" + index


__all__ = ["InputError", "Node", "PetitionView", "RateLimited", "SignatureForm", "SignerView"]
