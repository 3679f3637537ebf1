"""Schemathesis hooks for alertkit's API (loaded by tests/server_schemathesis.rs).

They cover the two rules JSON Schema cannot state; the document states
them in words, and everything else is left to Schemathesis:

* ``expires_at`` must lie in the future (422 otherwise). A generated
  time in the past is moved to the year 2999, so schema-valid raises
  are not refused for it. Negative cases keep whatever made them invalid.
* A list ``cursor`` is an opaque token only the server mints (it is
  signed; a forged one gets 400, which the Rust tests check). Generated
  queries do not invent one.
"""

from datetime import datetime, timezone

import schemathesis

FAR_FUTURE = "2999-01-01T00:00:00Z"


def _future(obj):
    if not isinstance(obj, dict):
        return
    at = obj.get("expires_at")
    if isinstance(at, str):
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None and when <= datetime.now(timezone.utc):
            obj["expires_at"] = FAR_FUTURE
    _future(obj.get("template"))


@schemathesis.hook
def map_body(ctx, body):
    _future(body)
    return body


@schemathesis.hook
def map_query(ctx, query):
    if isinstance(query, dict):
        query.pop("cursor", None)
    return query
