"""hab's four tasks for a real Celery worker, with the same semantics as hab's own worker.

hab starts it as `venv/bin/python -m celery -A hab_tasks worker …` with this directory on
PYTHONPATH and its settings in the environment:

  HAB_BROKER_URL, HAB_BACKEND_URL   where the broker and the result backend are; client-side
                                    failover: several broker URLs separated by `;` (kombu's
                                    round-robin failover), and `sentinel://h:p;sentinel://h:p
                                    ?master_name=NAME` (Celery's Sentinel result backend; the
                                    name goes into result_backend_transport_options)
  HAB_QUEUE_TYPE                    classic | quorum (queue arguments as hab declares them)
  HAB_QUEUE_DURABLE                 1 | 0
  HAB_ACKS_LATE                     1 (ack after the result is stored) | 0 (Celery's default)
  HAB_PREFETCH_MULTIPLIER           Celery's worker_prefetch_multiplier
  HAB_RESULT_TTL_S                  result_expires, seconds
  HAB_HEARTBEAT_S                   broker_heartbeat, seconds (0 disables)
  HAB_TRACK_STARTED                 1 (task_track_started: store STARTED when a task starts) | 0
  HAB_WORKER_NAME, HAB_EXECUTIONS   hab's side channel: every execution is appended to this
                                    file as `event,unix_us,task_id,worker,detail` lines, one
                                    write per event, through neither RabbitMQ nor Redis

Tasks: hab.trivial() -> 42; hab.sleep(seconds) -> seconds; hab.write_zeros(path, nbytes)
(1 MiB chunks, fdatasync, the file deleted even on error) -> nbytes; hab.factorial(n) ->
number of decimal digits of n!.
"""

import math
import os
import time

from celery import Celery, signals
from kombu import Exchange, Queue

app = Celery("hab")

_queue_args = {"x-queue-type": "quorum"} if os.environ.get("HAB_QUEUE_TYPE") == "quorum" else None
_durable = os.environ.get("HAB_QUEUE_DURABLE", "1") == "1"

_backend_url = os.environ["HAB_BACKEND_URL"]
_backend_options = {}
if _backend_url.startswith("sentinel://") and "?master_name=" in _backend_url:
    _backend_url, _master_name = _backend_url.rsplit("?master_name=", 1)
    _backend_options = {"master_name": _master_name}

app.conf.update(
    broker_url=os.environ["HAB_BROKER_URL"],
    result_backend=_backend_url,
    result_backend_transport_options=_backend_options,
    task_queues=[
        Queue(
            "celery",
            Exchange("celery", type="direct", durable=_durable),
            routing_key="celery",
            durable=_durable,
            queue_arguments=_queue_args,
        )
    ],
    task_default_queue="celery",
    task_acks_late=os.environ.get("HAB_ACKS_LATE", "0") == "1",
    task_track_started=os.environ.get("HAB_TRACK_STARTED", "0") == "1",
    worker_prefetch_multiplier=int(os.environ.get("HAB_PREFETCH_MULTIPLIER", "4")),
    result_expires=int(os.environ.get("HAB_RESULT_TTL_S", "86400")),
    broker_heartbeat=int(os.environ.get("HAB_HEARTBEAT_S", "10")),
    broker_connection_retry_on_startup=True,
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    worker_hijack_root_logger=False,
)

CHUNK = 1 << 20
_WORKER = os.environ.get("HAB_WORKER_NAME", "celery").replace(",", " ")
_SIDE_PATH = os.environ.get("HAB_EXECUTIONS")
_side_fd = None


def _side(event, task_id, detail=""):
    """Append one side-channel line with a single write (O_APPEND: atomic per line)."""
    global _side_fd
    if _SIDE_PATH is None:
        return
    if _side_fd is None:
        _side_fd = os.open(_SIDE_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    now_us = time.time_ns() // 1000
    detail = str(detail).replace(",", " ").replace("\n", " ").replace("\r", " ")
    os.write(_side_fd, f"{event},{now_us},{task_id},{_WORKER},{detail}\n".encode())


@signals.worker_process_init.connect
def _reopen_side_channel(**_):
    # Each prefork child opens its own descriptor.
    global _side_fd
    _side_fd = None


@signals.task_prerun.connect
def _on_start(task_id=None, task=None, **_):
    _side("start", task_id, task.name if task is not None else "")


@signals.task_postrun.connect
def _on_finish(task_id=None, state=None, **_):
    _side("finish_ok" if state == "SUCCESS" else "finish_error", task_id, "ok" if state == "SUCCESS" else state)


@app.task(name="hab.trivial")
def trivial():
    return 42


@app.task(name="hab.sleep")
def sleep(seconds):
    time.sleep(float(seconds))
    return seconds


@app.task(name="hab.write_zeros")
def write_zeros(path, nbytes):
    zeros = bytes(CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = int(nbytes)
        while left > 0:
            n = min(left, CHUNK)
            os.write(fd, zeros[:n] if n < CHUNK else zeros)
            left -= n
        os.fdatasync(fd)
    finally:
        os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return nbytes


@app.task(name="hab.factorial")
def factorial(n):
    x = math.factorial(int(n))
    # Decimal digits without str(x) (quadratic, and capped by sys.int_max_str_digits).
    k = max(int(math.log10(x)) if x > 0 else 0, 0)
    while 10 ** (k + 1) <= x:
        k += 1
    while k > 0 and 10**k > x:
        k -= 1
    return k + 1
