"""TokenIssuer.verify on its own: every claim it checks, and tokens it must refuse."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from core.roles import Role
from web.auth import AuthError, TokenIssuer

KEY = "test-secret-key-0123456789-abcdefghij"


def _signed(claims: dict[str, object], key: str = KEY) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def _code(issuer: TokenIssuer, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        issuer.verify(token)
    return caught.value.code


def test_issued_tokens_verify_and_carry_their_claims() -> None:
    issuer = TokenIssuer(KEY, 60)
    token = issuer.issue(Role.HOST, name="Hana", show_id="shw_1", user_id="usr_h")
    principal = issuer.verify(token)
    assert (principal.role, principal.user_id, principal.name, principal.show_id) == (
        Role.HOST,
        "usr_h",
        "Hana",
        "shw_1",
    )
    assert principal.expires_at - time.time() == pytest.approx(60, abs=2)


def test_bad_tokens_are_refused() -> None:
    issuer = TokenIssuer(KEY, 60)
    good = {"iss": "liveshop", "sub": "u", "role": "viewer", "exp": int(time.time()) + 60}
    assert _code(issuer, _signed({**good, "exp": int(time.time()) - 1})) == "auth_expired"
    assert _code(issuer, _signed({**good, "iss": "someone-else"})) == "auth_invalid"
    assert _code(issuer, _signed({k: v for k, v in good.items() if k != "sub"})) == "auth_invalid"
    assert _code(issuer, _signed({k: v for k, v in good.items() if k != "exp"})) == "auth_invalid"
    assert _code(issuer, _signed({**good, "exp": "9999999999"})) == "auth_invalid"
    assert _code(issuer, _signed({**good, "role": "emperor"})) == "auth_invalid"
    assert _code(issuer, _signed(good, key=KEY + "-other")) == "auth_invalid"
    # an unsigned token (alg none) and a token whose payload is not an object
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(good).encode()).rstrip(b"=")
    assert _code(issuer, (head + b"." + body + b".").decode()) == "auth_invalid"
    assert _code(issuer, jwt.api_jws.encode(b"[1, 2]", KEY, algorithm="HS256")) == "auth_invalid"
    assert _code(issuer, "not.a.token") == "auth_invalid"


def test_only_tokens_of_our_own_shape_verify() -> None:
    issuer = TokenIssuer(KEY, 60)
    token = issuer.issue(Role.VIEWER, name="v")
    header, payload, signature = token.split(".")
    # the same claims under another (valid HS256) header are not a token we wrote
    other = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS256"}').rstrip(b"=").decode()
    assert _code(issuer, f"{other}.{payload}.{signature}") == "auth_invalid"
    # a signature with a character outside the alphabet, or a changed payload
    assert _code(issuer, f"{header}.{payload}.{signature[:-1]}!") == "auth_invalid"
    assert _code(issuer, f"{header}.{payload}x.{signature}") == "auth_invalid"
    assert _code(issuer, f"{header}.{payload}.{signature}.extra") == "auth_invalid"
    assert _code(issuer, f"{header}.{payload}.{signature}\u00e9") == "auth_invalid"
    # the same signature bytes spelt another way (the last character's unused bits set)
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(signature[-1])
    twin = (
        signature[:-1]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
            last | 1 if last % 4 == 0 else last ^ 1
        ]
    )
    assert _code(issuer, f"{header}.{payload}.{twin}") == "auth_invalid"
    assert issuer.verify(token).name == "v"
