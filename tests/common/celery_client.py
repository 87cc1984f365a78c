"""A real Celery client for the live tests: sends the calls it reads (JSON on stdin) with
Celery's own `send_task` / canvas, waits for each result through Celery's own
`AsyncResult`, and prints one JSON line per call.

Input: {"broker": URL, "backend": URL, "calls": [CALL, ...]} where CALL is
  {"task": NAME, "args": [...], "kwargs": {...}, "countdown": S?, "expires_in": S?,
   "timeout": S}
or {"chain": [[NAME, [args]], [NAME, [args], "immutable"]], "timeout": S} (a chain; the
first task's result is reported, and the last's state).
Output per call: {"id", "state", "result", "sent_unix_us", "done_unix_us"?, "last_state"?}.
"""

import json
import sys
import time
from datetime import datetime, timedelta, timezone

from celery import Celery

spec = json.load(sys.stdin)
app = Celery("hab-test-client", broker=spec["broker"], backend=spec["backend"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


def wait(res, timeout):
    try:
        res.get(timeout=timeout, propagate=False)
    except Exception:  # a timeout: the state says what is known
        pass
    meta = res.backend.get_task_meta(res.id)
    out = {"id": res.id, "state": meta.get("status"), "result": None}
    result = meta.get("result")
    if isinstance(result, BaseException):
        out["result"] = {"exc_type": type(result).__name__, "exc_message": str(result)}
    else:
        out["result"] = result
    done = meta.get("date_done")
    if done is not None:
        if isinstance(done, str):
            done = datetime.fromisoformat(done)
        out["done_unix_us"] = int(done.replace(tzinfo=done.tzinfo or timezone.utc).timestamp() * 1e6)
    return out


for call in spec["calls"]:
    sent = time.time_ns() // 1000
    timeout = call.get("timeout", 30)
    if "chain" in call:
        sigs = []
        for step in call["chain"]:
            name, args = step[0], step[1]
            immutable = len(step) > 2 and step[2] == "immutable"
            sigs.append(app.signature(name, args=tuple(args), immutable=immutable))
        last = sigs[0]
        for s in sigs[1:]:
            last = last | s
        res = last.apply_async()
        first = res
        while first.parent is not None:
            first = first.parent
        out = wait(first, timeout)
        out["last_state"] = wait(res, 3)["state"]
    else:
        options = {}
        if "countdown" in call:
            options["countdown"] = call["countdown"]
        if "expires_in" in call:
            options["expires"] = datetime.now(timezone.utc) + timedelta(seconds=call["expires_in"])
        res = app.send_task(
            call["task"], args=call.get("args", []), kwargs=call.get("kwargs", {}), **options
        )
        out = wait(res, timeout)
    out["sent_unix_us"] = sent
    print(json.dumps(out), flush=True)
