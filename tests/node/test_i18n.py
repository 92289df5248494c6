"""The gettext catalogues: both languages say the same things with the same blanks."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from fedpetition.node import i18n


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_have_every_message_with_the_same_placeholders() -> None:
    french, english = i18n.MESSAGES["fr"], i18n.MESSAGES["en"]
    assert french.keys() == english.keys()
    differing = {key: (placeholders(french[key]), placeholders(english[key]))
                 for key in french if placeholders(french[key]) != placeholders(english[key])}
    assert not differing, differing


def test_a_missing_translation_falls_back_to_the_default_language() -> None:
    assert i18n.t("de", "sign.name") == i18n.MESSAGES[i18n.DEFAULT]["sign.name"]
    assert i18n.t("en", "check.ok", total="3") == "Verified: 3 signatures. Every step passed."


def test_fuzzy_and_empty_entries_are_not_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """A translation tool marks entries fuzzy when their source changed: gettext shows
    the default language's text instead, and so does the node."""
    folder = tmp_path / "locale" / "en" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "fedpetition.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, fuzzy\nmsgid "sign.name"\nmsgstr "Stale name"\n\n'
        'msgid "sign.email"\nmsgstr ""\n\n'
        'msgid "sign.submit"\nmsgstr "Sign"\n', encoding="utf-8")
    monkeypatch.setattr(i18n.importlib.resources, "files", lambda package: tmp_path)
    assert i18n._load("en") == {"sign.submit": "Sign"}
