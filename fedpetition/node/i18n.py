"""French and English texts of the node: mails, errors and pages.

Every sentence a person reads comes from the gettext catalogues under
``locale/<language>/LC_MESSAGES/fedpetition.po``, keyed by a short name (the
msgid); templates and code never hold the text itself. Translators edit the PO
files with their usual tools (Poedit, Weblate); Babel reads them at start.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
DOMAIN = "fedpetition"

def _load(language: str) -> dict[str, str]:
    """A language's catalogue: ``locale/<language>/LC_MESSAGES/fedpetition.po``."""
    resource = importlib.resources.files(__package__).joinpath(
        f"locale/{language}/LC_MESSAGES/{DOMAIN}.po")
    with resource.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    # Entries a translation tool marked fuzzy await review: not shown, as gettext does.
    messages = {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
    if not messages:
        raise RuntimeError(f"the {language} catalogue is empty")
    return messages


MESSAGES: dict[str, dict[str, str]] = {language: _load(language) for language in LANGUAGES}


def pick(preferred: Iterable[str], available: Iterable[str] = LANGUAGES) -> str:
    """The first preferred language the node speaks, else the default."""
    choices = list(available)
    for language in preferred:
        base = language.strip().lower().split("-", 1)[0]
        if base in choices:
            return base
    return DEFAULT if DEFAULT in choices else choices[0]


def from_accept_language(header: str | None) -> list[str]:
    """Languages of an Accept-Language header, best first (RFC 9110 §12.5.4)."""
    if not header:
        return []
    weighted = []
    for position, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def t(language: str, key: str, **values: object) -> str:
    """The text ``key`` in ``language`` (falling back to the default language)."""
    catalogue = MESSAGES.get(language) or MESSAGES[DEFAULT]
    text = catalogue.get(key) or MESSAGES[DEFAULT][key]
    return text.format(**values) if values else text
