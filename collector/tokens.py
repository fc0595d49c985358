"""Secret formats and hashing: enrollment tokens, agent credentials, user tokens, passwords.

Only hashes of secrets are stored.  Tokens are 256-bit random values, so a
fast hash (SHA-256) is enough for them; user passwords are low-entropy and get
scrypt.  Comparisons are constant-time.

* enrollment token: ``pe_<urlsafe random>``
* agent credential: ``pa_<credential id>_<urlsafe random>``
* user API token or dashboard session: ``pu_<token id>_<urlsafe random>``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ENROLLMENT_TOKEN_PREFIX = "pe_"
AGENT_CREDENTIAL_PREFIX = "pa_"
USER_TOKEN_PREFIX = "pu_"
_TOKEN_BYTES = 32

# scrypt cost: n=2**14, r=8 (16 MiB, tens of milliseconds), as OWASP suggests for scrypt.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_LEN = 32


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secrets_match(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(plaintext), stored_hash)


def new_enrollment_token() -> tuple[str, str]:
    """Return ``(plaintext, sha256 hash)`` of a fresh enrollment token."""
    token = ENROLLMENT_TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    return token, hash_secret(token)


def new_secret() -> tuple[str, str]:
    """Return ``(secret, sha256 hash)``; the token is built once its row has an id."""
    secret = secrets.token_urlsafe(_TOKEN_BYTES)
    return secret, hash_secret(secret)


new_agent_secret = new_secret


def _format(prefix: str, row_id: int, secret: str) -> str:
    return f"{prefix}{row_id}_{secret}"


def _parse(prefix: str, value: str) -> tuple[int, str] | None:
    if not value.startswith(prefix):
        return None
    parts = value[len(prefix) :].split("_", 1)
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1] or len(parts[0]) > 18:
        return None
    return int(parts[0]), parts[1]


def format_agent_credential(credential_id: int, secret: str) -> str:
    return _format(AGENT_CREDENTIAL_PREFIX, credential_id, secret)


def parse_agent_credential(value: str) -> tuple[int, str] | None:
    """Split ``pa_<id>_<secret>``; None when the shape is wrong."""
    return _parse(AGENT_CREDENTIAL_PREFIX, value)


def format_user_token(token_id: int, secret: str) -> str:
    return _format(USER_TOKEN_PREFIX, token_id, secret)


def parse_user_token(value: str) -> tuple[int, str] | None:
    """Split ``pu_<id>_<secret>``; None when the shape is wrong."""
    return _parse(USER_TOKEN_PREFIX, value)


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_LEN,
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
