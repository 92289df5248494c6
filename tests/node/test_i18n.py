"""The gettext catalogues: both languages say the same things with the same blanks."""

from __future__ import annotations

import string

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
