"""Schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A client sends a new Idempotency-Key for each change it intends; the server replays the first
outcome for a repeated key and refuses the same key with another input (422
IDEMPOTENCY_KEY_REUSED). Hypothesis repeats small values ("0", "00", ...) across generated
requests, which would make a well-formed request look refused. A well-formed generated key is
therefore made unique per call (keeping its text as a prefix, within the 255-character limit);
a malformed one (empty, too long, not visible ASCII) is sent as generated, so the server's
400 for it is still checked.
"""

import uuid

import schemathesis

HEADER = "idempotency-key"


def _well_formed(key: str) -> bool:
    return 0 < len(key) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in key)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == HEADER and isinstance(value, str) and _well_formed(value):
            headers[name] = f"{value[:200]}-{uuid.uuid4().hex}"
