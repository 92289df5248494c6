"""Tests for fedpetition.federation.httpsig (RFC 9421 Ed25519 signatures, RFC 9530 digests).

Vectors and where they come from:

* RFC 9421 (HTTP Message Signatures), Appendix B.1.4 "Example Ed25519 Test Key"
  ``test-key-ed25519``: the JWK members ``d`` (private) and ``x`` (public), and the
  PKCS#8 private key PEM body. Cross-checked against copies of the appendix in the
  search index (rfcinfo.com/rfc-9421 and several implementations' test suites).
* RFC 9421 Appendix B.2 "test-request" message (``POST /foo?param=Value&Pet=dog``,
  Host example.com, the Date, Content-Type, Content-Digest sha-512 and
  Content-Length 18 fields, body ``{"hello": "world"}`` without newline) and
  Appendix B.2.6 "Signing a Request Using ed25519": the signature base, the
  ``Signature-Input`` and the ``Signature`` under label ``sig-b26``
  (https://rfcinfo.com/rfc-9421/appendix-b-2-6-signing-a-request-using-ed25519;
  RFC 8792 line wrapping undone).
* RFC 9530 (Digest Fields): §2 ``Content-Digest`` example and Appendix D "Sample
  Digest Values" for ``{"hello": "world"}`` followed by LF (sha-256 ``RK/0qy…``,
  sha-512 ``YMAam5…``); the 18-byte body without LF has the sha-512 value that
  RFC 9421's test-request carries (``WZDPaV…``) and the sha-256 value used in
  RFC 9421 §B.2 examples (``X48E9q…``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_der_private_key

from fedpetition.core.errors import RemoteProtocolError
from fedpetition.core.notes import Signer
from fedpetition.federation.httpsig import (
    BadSignatureError,
    ComponentNotCoveredError,
    DigestMismatchError,
    MalformedSignatureHeaderError,
    MissingSignatureError,
    SignatureExpiredError,
    SignatureFromFutureError,
    UnknownKeyError,
    UnsupportedAlgorithmError,
    VerifiedRequest,
    content_digest,
    sign_request,
    signature_base,
    verify_content_digest,
    verify_request,
)


def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# RFC 9421 Appendix B.1.4, JWK form of test-key-ed25519.
RFC_KEY_ID = "test-key-ed25519"
RFC_D = _b64url("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
RFC_X = _b64url("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs")
# RFC 9421 Appendix B.1.4, PEM (PKCS#8) form of the same private key.
RFC_PRIVATE_PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF"

# RFC 9421 Appendix B.2, the test-request message.
RFC_METHOD = "POST"
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_BODY = b'{"hello": "world"}'
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": (
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    ),
    "Content-Length": "18",
}
# RFC 9421 Appendix B.2.6.
RFC_B26_COMPONENTS = ("date", "@method", "@path", "@authority", "content-type", "content-length")
RFC_B26_CREATED = 1618884473
RFC_B26_BASE = (
    b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    b'"@method": POST\n'
    b'"@path": /foo\n'
    b'"@authority": example.com\n'
    b'"content-type": application/json\n'
    b'"content-length": 18\n'
    b'"@signature-params": ("date" "@method" "@path" "@authority" '
    b'"content-type" "content-length");created=1618884473'
    b';keyid="test-key-ed25519"'
)
RFC_B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4"
    "A0w6vuQv5lIp5WPpBKRCw==:"
)

# RFC 9530 §2 and Appendix D: {"hello": "world"} plus LF.
RFC9530_BODY = b'{"hello": "world"}\n'
RFC9530_SHA256 = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
RFC9530_SHA512 = (
    "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/"
    "WkppmM44T3qg==:"
)
NO_LF_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"

RFC_PRIVATE = Ed25519PrivateKey.from_private_bytes(RFC_D)


def rfc_resolver(key_id: str) -> bytes:
    if key_id != RFC_KEY_ID:
        raise KeyError(key_id)
    return RFC_X


# ----------------------------------------------------------------- RFC vectors


def test_rfc_key_forms_agree() -> None:
    assert RFC_PRIVATE.public_key().public_bytes_raw() == RFC_X
    der = base64.b64decode(RFC_PRIVATE_PEM_BODY)
    loaded = load_der_private_key(der, password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert loaded.private_bytes_raw() == RFC_D


def test_rfc9421_b26_signature_base() -> None:
    base = signature_base(
        RFC_METHOD,
        RFC_URL,
        RFC_HEADERS,
        RFC_B26_COMPONENTS,
        created=RFC_B26_CREATED,
        key_id=RFC_KEY_ID,
    )
    assert base == RFC_B26_BASE


@pytest.mark.parametrize(
    "key",
    [RFC_PRIVATE, Signer("test-key-ed25519", RFC_D)],
    ids=["cryptography", "notes.Signer"],
)
def test_rfc9421_b26_sign_reproduces_signature(key: Ed25519PrivateKey | Signer) -> None:
    # The RFC's message carries no body signing of its own here: the B.2.6 example
    # does not cover content-digest, so sign without a body to get exactly its headers.
    out = sign_request(
        RFC_METHOD,
        RFC_URL,
        RFC_HEADERS,
        None,
        key_id=RFC_KEY_ID,
        private_key=key,
        created=RFC_B26_CREATED,
        label="sig-b26",
        components=RFC_B26_COMPONENTS,
        include_alg=False,
    )
    assert out == {"Signature-Input": RFC_B26_SIGNATURE_INPUT, "Signature": RFC_B26_SIGNATURE}


def test_rfc9421_b26_verify() -> None:
    headers = {
        **RFC_HEADERS,
        "Signature-Input": RFC_B26_SIGNATURE_INPUT,
        "Signature": RFC_B26_SIGNATURE,
    }
    result = verify_request(
        RFC_METHOD,
        RFC_URL,
        headers,
        RFC_BODY,
        resolve_key=rfc_resolver,
        now=RFC_B26_CREATED + 10,
        required_components=("@method", "@path", "@authority"),
    )
    assert result.key_id == RFC_KEY_ID
    assert result.created == RFC_B26_CREATED
    assert result.expires is None
    assert result.nonce is None
    assert result.label == "sig-b26"
    assert result.covered == RFC_B26_COMPONENTS


def test_rfc9421_b26_default_policy_wants_target_uri_and_digest() -> None:
    headers = {
        **RFC_HEADERS,
        "Signature-Input": RFC_B26_SIGNATURE_INPUT,
        "Signature": RFC_B26_SIGNATURE,
    }
    with pytest.raises(ComponentNotCoveredError):
        verify_request(
            RFC_METHOD,
            RFC_URL,
            headers,
            RFC_BODY,
            resolve_key=rfc_resolver,
            now=RFC_B26_CREATED,
        )


def test_rfc9530_content_digest_vectors() -> None:
    assert content_digest(RFC9530_BODY) == RFC9530_SHA256
    assert content_digest(RFC9530_BODY, ("sha-512",)) == RFC9530_SHA512
    assert content_digest(RFC9530_BODY, ("sha-256", "sha-512")) == (
        f"{RFC9530_SHA256}, {RFC9530_SHA512}"
    )
    assert content_digest(RFC_BODY) == NO_LF_SHA256
    assert content_digest(RFC_BODY, ("sha-512",)) == RFC_HEADERS["Content-Digest"]
    verify_content_digest(RFC9530_SHA256, RFC9530_BODY)
    verify_content_digest(RFC9530_SHA512, RFC9530_BODY)
    verify_content_digest(f"{RFC9530_SHA512},   {RFC9530_SHA256}", RFC9530_BODY)
    verify_content_digest(f"md5=:AAAA:, {RFC9530_SHA256}", RFC9530_BODY)  # unknown ignored


def test_content_digest_mismatch() -> None:
    with pytest.raises(DigestMismatchError) as exc:
        verify_content_digest(RFC9530_SHA256, RFC_BODY)
    assert exc.value.status == 400
    # RFC 9530 §6.1-style truncated sha-512 value
    with pytest.raises(DigestMismatchError):
        verify_content_digest(
            "sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4=:", RFC9530_BODY
        )
    with pytest.raises(DigestMismatchError):
        verify_content_digest("md5=:AAAA:", RFC9530_BODY)
    with pytest.raises(DigestMismatchError):
        verify_content_digest(f"{RFC9530_SHA512}, {NO_LF_SHA256}", RFC9530_BODY)


@pytest.mark.parametrize(
    "header",
    ["sha-256", "sha-256=abc", "sha-256=:not base64!:", "sha-256=:AAAA:,", "SHA-256=:AA==:"],
)
def test_content_digest_malformed(header: str) -> None:
    with pytest.raises(MalformedSignatureHeaderError) as exc:
        verify_content_digest(header, b"x")
    assert exc.value.status == 400


# ----------------------------------------------------------------- round trips

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY_ID = "https://a.example/node#main-key"
URL = "https://b.example:8443/inbox?x=1"
BODY = b'{"type": "Announce"}'
NOW = 1_700_000_000
BASE_HEADERS = {"Content-Type": "application/json", "Date": "Tue, 14 Nov 2023 22:13:20 GMT"}


def resolver(key_id: str) -> bytes:
    if key_id != KEY_ID:
        raise LookupError(key_id)
    return KEY.public_key().public_bytes_raw()


def signed(
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes | None = BODY,
    created: int = NOW,
    expires: int | None = NOW + 300,
    nonce: str | None = "n-1",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    h = dict(BASE_HEADERS if headers is None else headers)
    h.update(
        sign_request(
            method,
            url,
            h,
            body,
            key_id=KEY_ID,
            private_key=KEY,
            created=created,
            expires=expires,
            nonce=nonce,
        )
    )
    return h


def verify(
    headers: dict[str, str],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes | None = BODY,
    now: int = NOW,
    resolve_key: Callable[[str], bytes] = resolver,
    max_age: int = 3600,
    required_components: Sequence[str] | None = None,
    label: str | None = None,
) -> VerifiedRequest:
    return verify_request(
        method,
        url,
        headers,
        body,
        resolve_key=resolve_key,
        now=now,
        max_age=max_age,
        required_components=required_components,
        label=label,
    )


def test_round_trip_with_body() -> None:
    h = signed()
    assert h["Content-Digest"] == content_digest(BODY)
    assert h["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "date");created=1700000000'
        ';expires=1700000300;nonce="n-1";alg="ed25519";keyid="https://a.example/node#main-key"'
    )
    result = verify_request("POST", URL, h, BODY, resolve_key=resolver, now=NOW + 5)
    assert result.key_id == KEY_ID
    assert (result.created, result.expires, result.nonce) == (NOW, NOW + 300, "n-1")
    assert result.covered == ("@method", "@target-uri", "content-digest", "date")


def test_round_trip_without_body_and_lowercase_headers() -> None:
    h = signed(method="GET", body=None, expires=None, nonce=None, headers={})
    assert "Content-Digest" not in h
    lower = {k.lower(): v for k, v in h.items()}
    result = verify_request("GET", URL, lower, b"", resolve_key=resolver, now=NOW)
    assert result.covered == ("@method", "@target-uri")
    assert result.nonce is None and result.expires is None


def test_round_trip_notes_signer_and_derived_components() -> None:
    signer = Signer("node.example", bytes(range(32, 64)))
    h = {"Date": "x"}
    h.update(
        sign_request(
            "PUT",
            "HTTPS://Node.Example:443/a%20b?",
            h,
            b"",
            key_id="k",
            private_key=signer,
            created=NOW,
            components=["@method", "@authority", "@path", "@query", "@scheme", "@request-target"],
            tag="fedpetition",
        )
    )
    base = signature_base(
        "PUT",
        "HTTPS://Node.Example:443/a%20b?",
        h,
        ["@authority", "@path", "@query", "@scheme", "@request-target"],
    )
    assert base.split(b"\n")[:5] == [
        b'"@authority": node.example',
        b'"@path": /a%20b',
        b'"@query": ?',
        b'"@scheme": https',
        # RFC 9421 §2.2.5: the request target as in the request line, origin-form
        # absolute-path ["?" query] (RFC 9112 §3.2.1); the URL's query is present,
        # though empty, and its "?" is not dropped (RFC 3986 §6.2.3).
        b'"@request-target": /a%20b?',
    ]
    result = verify_request(
        "PUT",
        "HTTPS://Node.Example:443/a%20b?",
        h,
        b"",
        resolve_key=lambda _k: signer.public_key,
        now=NOW,
        required_components=["@method", "@authority", "@path"],
    )
    assert result.tag == "fedpetition"


# ----------------------------------------------------------------- one negative per kind


def test_missing_signature() -> None:
    with pytest.raises(MissingSignatureError) as exc:
        verify(dict(BASE_HEADERS))
    assert exc.value.status == 401
    h = signed()
    with pytest.raises(MissingSignatureError):
        verify(h, label="other")


@pytest.mark.parametrize(
    "sig_input",
    [
        'sig1=("@method" "@target-uri"',  # unterminated
        'sig1=(@method);created=1;keyid="k"',  # token, not string
        'sig1="@method";created=1;keyid="k"',  # not an inner list
        'sig1=("@method" "@target-uri");keyid="k"',  # no created
        'sig1=("@method" "@target-uri");created=1',  # no keyid
        'sig1=("@method" "@target-uri");created="1";keyid="k"',  # created not an integer
        'sig1=("@method";sf "@target-uri");created=1;keyid="k"',  # component parameter
    ],
)
def test_malformed_signature_input(sig_input: str) -> None:
    h = signed()
    h["Signature-Input"] = sig_input
    with pytest.raises(MalformedSignatureHeaderError) as exc:
        verify(h)
    assert exc.value.status == 400
    assert isinstance(exc.value, RemoteProtocolError)


def test_malformed_signature_value() -> None:
    h = signed()
    h["Signature"] = 'sig1="not bytes"'
    with pytest.raises(MalformedSignatureHeaderError):
        verify(h)


def test_unsupported_alg() -> None:
    h = signed()
    h["Signature-Input"] = h["Signature-Input"].replace('"ed25519"', '"rsa-pss-sha512"')
    with pytest.raises(UnsupportedAlgorithmError) as exc:
        verify(h)
    assert exc.value.status == 401


def test_missing_component() -> None:
    h = signed(headers={})
    with pytest.raises(ComponentNotCoveredError):
        verify(h, required_components=["@method", "@target-uri", "date"])


def test_body_without_covered_digest() -> None:
    h = signed(method="GET", body=None)
    with pytest.raises(ComponentNotCoveredError):
        verify(h, method="GET", body=b"smuggled")


def test_created_in_future() -> None:
    h = signed(created=NOW + 301, expires=None)
    with pytest.raises(SignatureFromFutureError):
        verify(h)
    verify(signed(created=NOW + 300, expires=None))  # within skew


def test_expired() -> None:
    h = signed(expires=NOW + 10)
    with pytest.raises(SignatureExpiredError):
        verify(h, now=NOW + 10 + 301)


def test_too_old() -> None:
    h = signed(expires=None)
    with pytest.raises(SignatureExpiredError):
        verify(h, now=NOW + 3601)
    with pytest.raises(SignatureExpiredError):
        verify(h, now=NOW + 61, max_age=60)


def test_unknown_key_id() -> None:
    h = signed()
    h["Signature-Input"] = h["Signature-Input"].replace(KEY_ID, "https://evil.example/key")
    with pytest.raises(UnknownKeyError) as exc:
        verify(h)
    assert exc.value.status == 401
    with pytest.raises(UnknownKeyError):
        verify(signed(), resolve_key=lambda _k: b"short")


def test_changed_body() -> None:
    h = signed()
    with pytest.raises(DigestMismatchError):
        verify(h, body=b'{"type": "Delete"}')


def test_replaced_digest_header() -> None:
    evil = b'{"type": "Delete"}'
    h = signed()
    h["Content-Digest"] = content_digest(evil)
    with pytest.raises(BadSignatureError):
        verify(h, body=evil)


def test_changed_path() -> None:
    with pytest.raises(BadSignatureError):
        verify(signed(), url="https://b.example:8443/outbox?x=1")


def test_changed_method() -> None:
    with pytest.raises(BadSignatureError):
        verify(signed(), method="PUT")


def test_header_tampering() -> None:
    h = signed()
    h["Date"] = "Wed, 15 Nov 2023 22:13:20 GMT"
    with pytest.raises(BadSignatureError):
        verify(h)
    h = signed()
    h["Signature-Input"] = h["Signature-Input"].replace('nonce="n-1"', 'nonce="n-2"')
    with pytest.raises(BadSignatureError):
        verify(h)


def test_covered_header_absent() -> None:
    h = signed()
    del h["Date"]
    with pytest.raises(BadSignatureError):
        verify(h)


def test_signature_by_other_key() -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    h = dict(BASE_HEADERS)
    h.update(sign_request("POST", URL, h, BODY, key_id=KEY_ID, private_key=other, created=NOW))
    with pytest.raises(BadSignatureError):
        verify(h)


def test_second_label_selected() -> None:
    h = signed()
    h["Signature-Input"] = 'proxy=("@method");created=1;keyid="p", ' + h["Signature-Input"]
    h["Signature"] = "proxy=:AAAA:, " + h["Signature"]
    result = verify_request("POST", URL, h, BODY, resolve_key=resolver, now=NOW, label="sig1")
    assert result.label == "sig1"
