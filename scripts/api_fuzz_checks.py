"""Schemathesis hooks for Converge's public API, loaded by scripts/api-fuzz (SCHEMATHESIS_HOOKS).

The check `stored_state_changes_only_on_accepted_writes` holds the node to this rule: a request
changes what the node stores if and only if it is a PUT or DELETE of /kv/{key} answered 2xx.
So a refused request (4xx, 5xx) stores nothing, a read writes nothing, and an accepted write is
seen to change something, which shows the detector is not blind.

What is "stored" is read around every request schemathesis sends (its own checks' requests
included): GET /status (`seq`, the last change number, and `lamport`, the clock) and GET /digest
(the hash over the live rows and the count of rows, tombstones included). Any write, delete or
tombstone moves `seq`; any changed row moves the digest. The node is alone (no peers), so
nothing else changes it, and schemathesis runs with one worker, so a change belongs to the
request it surrounds. Nothing else but expiry: a key PUT with `?ttl=SECONDS` vanishes from the
digest when its time comes, and the expiry sweep then tombstones it (a new `seq`), between
requests. So an accepted `ttl` shorter than an hour is sent as an hour, which no run lasts; a
`ttl` the API refuses is sent as generated, so its refusal is still checked.

Environment: KV_FUZZ_URL (the node), KV_FUZZ_TOKEN (its client token, if any).
"""

import json
import os
import threading
import urllib.request

import schemathesis

URL = os.environ["KV_FUZZ_URL"].rstrip("/")
TOKEN = os.environ.get("KV_FUZZ_TOKEN") or None

_lock = threading.Lock()
_before: dict[int, tuple] = {}  # id(case) -> state read just before its request
# id(response) -> (response, what was wrong or None); the response is kept so its id is not reused
_verdicts: dict[int, tuple] = {}
_unreported: list[str] = []  # violations on responses the check has not been shown yet


def _get_json(path: str) -> dict:
    request = urllib.request.Request(URL + path)
    if TOKEN:
        request.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def stored_state() -> tuple:
    """(seq, lamport, digest, rows): changes whenever anything the node stores changes."""
    status = _get_json("/status")
    digest = _get_json("/digest")
    return (status["seq"], status["lamport"], digest["digest"], digest["rows"])


def _describe(case, response) -> str:
    return f"{case.method.upper()} {case.formatted_path} -> {response.status_code}"


MIN_TTL = 3600


def _lengthen_ttl(case) -> None:
    """A valid `ttl` below MIN_TTL becomes MIN_TTL, so no key expires during the run."""
    if case.method.upper() != "PUT" or not isinstance(case.query, dict) or "ttl" not in case.query:
        return
    try:
        ttl = int(str(case.query["ttl"]))
    except ValueError:
        return
    if 1 <= ttl < MIN_TTL:
        case.query["ttl"] = MIN_TTL


@schemathesis.hook
def before_call(context, case, **kwargs):
    _lengthen_ttl(case)
    state = stored_state()
    with _lock:
        _before[id(case)] = state


@schemathesis.hook
def after_call(context, case, response):
    after = stored_state()
    with _lock:
        before = _before.pop(id(case), None)
    if before is None:
        return
    accepted_write = (
        200 <= response.status_code < 300
        and case.method.upper() in ("PUT", "DELETE")
        and case.operation.path == "/kv/{key}"
    )
    changed = after != before
    problem = None
    if changed and not accepted_write:
        problem = f"{_describe(case, response)} changed what the node stores: {before} -> {after}"
    elif accepted_write and after[0] <= before[0]:
        problem = f"{_describe(case, response)} was accepted but the stored state did not move: {before} -> {after}"
    with _lock:
        _verdicts[id(response)] = (response, problem)
        if problem:
            _unreported.append(problem)


@schemathesis.check
class stored_state_changes_only_on_accepted_writes:
    """A request changes what the node stores exactly when it is an accepted PUT or DELETE."""

    def after_response(self, ctx, response, case):
        with _lock:
            _, problem = _verdicts.pop(id(response), (None, None))
            if problem in _unreported:
                _unreported.remove(problem)
        if problem:
            raise AssertionError(problem)

    def after_run(self, ctx):
        with _lock:
            left = list(_unreported)
        if left:
            raise AssertionError("requests made by other checks broke the rule: " + "; ".join(left[:5]))
