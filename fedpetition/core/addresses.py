"""Canonical mailboxes (spec §4.6): one string per mailbox, for nullifiers and signer rows.

A person who can read mail at several addresses that a provider delivers to one
mailbox (``a.b@gmail.com`` and ``ab+petitions@googlemail.com``) should get one
nullifier per petition, so that signing twice through aliases counts once (§9)
and a node cannot be signed twice with an alias either. :func:`canonical_mailbox`
maps such addresses to one string; the nullifier input (§4.4) and a node's index
of its signers are computed on that string.

It takes an address that the node has already checked and normalised
(``fedpetition.node.mail.normalise_email``: syntax, surrounding spaces, the
domain as lower-case ASCII through IDNA 2008 with the UTS 46 mapping, the local
part in NFC and lower case) and applies, in order:

1. **Unicode NFC of the local part**, lower case (Unicode default case
   conversion, full mappings, as Python's ``str.lower``), NFC again. The same
   address typed on two systems can arrive as canonically equivalent but
   different code points ("é" as U+00E9 or as "e" + U+0301); NFC gives them one
   form. Lower-casing can decompose ("İ" becomes "i" + U+0307), hence the second
   NFC. (Already done by ``normalise_email``; repeated so that this function
   alone defines the canonical form. It is idempotent.)
2. **Lower-case local part.** RFC 5321 §2.4 lets the receiving host treat the
   local part as case-sensitive but discourages it, and every large provider
   delivers ``Alice@`` and ``alice@`` to one mailbox. The cost: two distinct
   mailboxes differing only in case, at a provider that keeps them apart, would
   share one nullifier and count once (the second person could not sign on a
   node where the first did). That errs toward counting a person less, never
   more, and such providers are vanishingly rare; it is accepted.
3. **Provider aliases, only where the provider documents them** (the sources are
   next to :data:`GMAIL_DOMAINS` and :data:`SUBADDRESS_DOMAINS`):

   * ``gmail.com`` and ``googlemail.com`` are one mailbox namespace: the domain
     becomes ``gmail.com``, dots in the local part are dropped and so is a
     ``+tag`` (everything from the first ``+``);
   * at a short list of providers that document RFC 5233 subaddressing with
     ``+`` as delivering to the same mailbox, a ``+tag`` is dropped.

   A rule is applied only when what remains is a plausible mailbox name (not
   empty, not ending with a dot); otherwise the local part is kept, so that the
   canonical mailbox is itself a normalised address.

Why not drop a ``+tag`` at every domain: the local part means whatever the
receiving host says it means (RFC 5321 §2.4). Subaddressing (RFC 5233) is a
per-server convention, with ``+`` at some, ``-`` at others (Yahoo's disposable
addresses are ``nickname-keyword@``, where the nickname is not the mailbox
name), and none at many, where ``a+b@`` is simply another account than ``a@``.
Merging two people's addresses gives them one nullifier: the second signer is
silently dropped from the count, and turned away by a node where the first
signed. Missing a merge only lets one person be counted twice through an alias,
which two real mailboxes allow anyway; so every rule here needs the provider's
own word, and a provider that is not listed keeps its addresses apart.

The privacy side: a merge also links. Whoever can test an address against the
nullifiers (the origin, §4.4) testing ``alice@fastmail.com`` also finds
``alice+petitions@fastmail.com``: a subaddress does not hide a signer from the
origin. The mail itself is always sent to the address as the signer typed it
(normalised), never to the canonical form, and a receipt's commitment (§4.3)
opens with that typed address.

Unicode case mapping and normalisation depend on the Unicode version (this
module uses Python's, 14.0 on Python 3.11); implementations on other versions
agree except for characters assigned in between, which no listed provider allows
in a local part.
"""

from __future__ import annotations

import unicodedata

from .errors import LocalProtocolError

__all__ = ["GMAIL", "GMAIL_DOMAINS", "SUBADDRESS_DOMAINS", "canonical_mailbox"]

# Google's consumer mail (spec §4.6). The rules hold for gmail.com and
# googlemail.com only: on Google Workspace domains dots do make a different
# address, and those are ordinary domains here.
# - https://support.google.com/mail/answer/10313 (gmail.com and googlemail.com
#   addresses are the same);
# - https://support.google.com/mail/answer/7436150 ("Dots don't matter in Gmail
#   addresses", personal accounts);
# - https://support.google.com/mail/answer/12096 (janedoe+school@gmail.com is
#   delivered to janedoe@gmail.com).
GMAIL = "gmail.com"
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Providers whose own help pages say that mail to user+tag@ reaches user@
# (RFC 5233 subaddressing with "+"), by exact domain (spec §4.6):
# - Fastmail, fastmail.com and fastmail.fm:
#   https://www.fastmail.help/hc/en-us/articles/360060591053 ("Plus addressing
#   and subdomain addressing": username+whateveryoulike@domain.tld is still
#   delivered to the account). Subdomain addressing (tag@user.fastmail.com) and
#   Fastmail's many other domains are not merged.
# - Proton Mail, proton.me and protonmail.com:
#   https://proton.me/support/addresses-and-aliases ("Plus addressing: unlimited
#   extra addresses using the + sign").
# Not listed, though often said to support "+": Outlook.com, Hotmail and Live
# (Microsoft's consumer help page could not be read to confirm it) and iCloud
# (no Apple page found). Yahoo uses "-" for disposable addresses under a
# separate nickname (https://help.yahoo.com/kb/SLN28815.html): nothing to strip.
# Add a provider only with its page cited here and in spec §4.6.
SUBADDRESS_DOMAINS = frozenset({"fastmail.com", "fastmail.fm", "proton.me", "protonmail.com"})

_TAG_SEPARATOR = "+"


def _plausible(user: str) -> bool:
    """Whether a shortened local part is still a dot-atom: not empty, no dot at its end.

    (It cannot start with a dot or hold two in a row: the address it comes from
    could not.)
    """
    return bool(user) and not user.endswith(".")


def canonical_mailbox(address: str) -> str:
    """The canonical mailbox of a normalised address (spec §4.6); see the module docstring.

    ``address`` must come from ``normalise_email``: an unchecked address is the
    caller's bug and raises :class:`LocalProtocolError` if it has no ``@``, an
    empty side or a non-ASCII domain. The result is itself a normalised address,
    never longer than ``address``, and ``canonical_mailbox`` of it is itself.
    """
    if not isinstance(address, str):
        raise LocalProtocolError("canonical_mailbox: expected a string")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or not domain.isascii():
        raise LocalProtocolError("canonical_mailbox: expected an address from normalise_email()")
    domain = domain.lower()
    local = unicodedata.normalize("NFC", unicodedata.normalize("NFC", local).lower())
    if domain in GMAIL_DOMAINS:
        user = local.partition(_TAG_SEPARATOR)[0].replace(".", "")
        if user:  # "+x@gmail.com" names no Gmail account: leave it alone
            local = user
        domain = GMAIL
    elif domain in SUBADDRESS_DOMAINS:
        user = local.partition(_TAG_SEPARATOR)[0]
        if _plausible(user):
            local = user
    return f"{local}@{domain}"
