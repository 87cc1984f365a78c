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
  HAB_CLOCK_ANCHOR                  the run's clock anchor `<unix_us>:<mono_us>:<boot_id>`:
                                    side-channel times are time.monotonic_ns() (Linux's
                                    CLOCK_MONOTONIC, hab's clock) through it, so they lie
                                    on the run's time line; unset or another boot: this
                                    process anchors on the wall clock itself. Each process
                                    writes its anchor as a `clock` line when it opens the
                                    file (src/clock.rs)
  HAB_SCRATCH                       the only directory hab.write_zeros creates files in
                                    (unset: every write is refused)
  HAB_MAX_FACTORIAL_N, HAB_MAX_WRITE_BYTES, HAB_MAX_SLEEP_S, HAB_MAX_MESSAGE_BYTES
                                    the topology's [workers.limits]

Tasks: hab.trivial() -> 42; hab.sleep(seconds) -> None; hab.write_zeros(path, nbytes)
(1 MiB chunks, fdatasync, the file deleted even on error) -> nbytes; hab.factorial(n) ->
number of decimal digits of n!.

The same rules as hab's own worker (src/tasks/scratch.rs, src/tasks/refusal.rs): a path is
taken inside HAB_SCRATCH and resolved one component at a time with O_NOFOLLOW (no `..`, no
symbolic link, absolute paths only inside it), the file is created with O_EXCL and only that
file is deleted; arguments over a limit raise ValueError naming the limit and the setting.
Every refusal's message ends with `(rule: <code>)`, which the side channel records as
`finish_error` with detail `refused:<code>`. Not mirrored: the worker-side crash limit
(Celery's own prefork pool handles a dead child) and reservations of free space across
concurrent writes (prefork children do not share them).
"""

import errno
import json
import math
import os
import re
import stat
import time

from celery import Celery, signals
from kombu import Exchange, Queue

app = Celery("hab")

# The same arguments hab declares (src/broker.rs: QUORUM_DELIVERY_LIMIT).
_queue_args = (
    {"x-queue-type": "quorum", "x-delivery-limit": 20}
    if os.environ.get("HAB_QUEUE_TYPE") == "quorum"
    else None
)
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
_SCRATCH = os.environ.get("HAB_SCRATCH")
_SCRATCH = os.path.realpath(_SCRATCH) if _SCRATCH else None
_MAX_FACTORIAL_N = int(os.environ.get("HAB_MAX_FACTORIAL_N", "10000000"))
_MAX_WRITE_BYTES = int(os.environ.get("HAB_MAX_WRITE_BYTES", "100000000000"))
_MAX_SLEEP_S = float(os.environ.get("HAB_MAX_SLEEP_S", "3600"))
_MAX_MESSAGE_BYTES = int(os.environ.get("HAB_MAX_MESSAGE_BYTES", str(4 << 20)))
_RULE = re.compile(r"\(rule: (\w+)\)$")
_WORKER = os.environ.get("HAB_WORKER_NAME", "celery").replace(",", " ")
_SIDE_PATH = os.environ.get("HAB_EXECUTIONS")
_side_fd = None
_NIL_ID = "00000000-0000-0000-0000-000000000000"


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _clock_anchor():
    """(unix_us, mono_us, boot_id, inherited): the run's anchor, or this process's own."""
    boot = _boot_id()
    try:
        unix_us, mono_us, anchor_boot = os.environ["HAB_CLOCK_ANCHOR"].strip().split(":", 2)
        if boot and anchor_boot == boot:
            return int(unix_us), int(mono_us), boot, True
    except (KeyError, ValueError):
        pass
    mono_us = time.monotonic_ns() // 1000
    return time.time_ns() // 1000, mono_us, boot, False


# Taken at import: prefork children inherit it (the same anchor, the same clock).
_ANCHOR = _clock_anchor()


def _now_us():
    """hab's clock: CLOCK_MONOTONIC through the anchor, unix µs (src/clock.rs)."""
    return _ANCHOR[0] + time.monotonic_ns() // 1000 - _ANCHOR[1]


def _write_line(event, task_id, detail):
    detail = str(detail).replace(",", " ").replace("\n", " ").replace("\r", " ")
    os.write(_side_fd, f"{event},{_now_us()},{task_id},{_WORKER},{detail}\n".encode())


def _side(event, task_id, detail=""):
    """Append one side-channel line with a single write (O_APPEND: atomic per line)."""
    global _side_fd
    if _SIDE_PATH is None:
        return
    if _side_fd is None:
        _side_fd = os.open(_SIDE_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        unix_us, mono_us, boot, inherited = _ANCHOR
        _write_line(
            "clock",
            _NIL_ID,
            f"pid={os.getpid()} unix_us={unix_us} mono_us={mono_us} boot_id={boot} "
            f"inherited={1 if inherited else 0}",
        )
    _write_line(event, task_id, detail)


@signals.worker_process_init.connect
def _reopen_side_channel(**_):
    # Each prefork child opens its own descriptor.
    global _side_fd
    _side_fd = None


@signals.task_prerun.connect
def _on_start(task_id=None, task=None, **_):
    _side("start", task_id, task.name if task is not None else "")


@signals.task_postrun.connect
def _on_finish(task_id=None, state=None, retval=None, **_):
    if state == "SUCCESS":
        _side("finish_ok", task_id, "ok")
        return
    rule = _RULE.search(str(retval)) if isinstance(retval, BaseException) else None
    _side("finish_error", task_id, f"refused:{rule.group(1)}" if rule else state)


def _refuse(exc_class, message, rule):
    """An exception naming the rule, as hab's worker words it."""
    return exc_class(f"{message} (rule: {rule})")


def _limit(rule, what, setting, limit):
    return _refuse(
        ValueError,
        f"{what} exceeds the worker's limit {limit}; raise workers.limits.{setting} in the "
        "topology to allow it",
        rule,
    )


def _check_message_size(args, kwargs):
    # Celery decoded the body already; its JSON size is what hab's worker bounds.
    size = len(json.dumps([list(args), kwargs, {}]).encode())
    if size > _MAX_MESSAGE_BYTES:
        raise _limit(
            "message_too_large",
            f"a message body of {size} bytes",
            "max_message_bytes",
            f"of {_MAX_MESSAGE_BYTES} bytes",
        )


class _HabTask(app.Task):
    def __call__(self, *args, **kwargs):
        _check_message_size(args, kwargs)
        return super().__call__(*args, **kwargs)


app.Task = _HabTask


@app.task(name="hab.trivial")
def trivial():
    return 42


@app.task(name="hab.sleep")
def sleep(seconds):
    if float(seconds) > _MAX_SLEEP_S:
        raise _limit("sleep_limit", f"sleep({seconds})", "max_sleep", f"of {_MAX_SLEEP_S:g}s")
    time.sleep(float(seconds))
    return None


def _quote(path):
    return repr(str(path))


def _open_new_in_scratch(path):
    """(parent directory fd, name, file fd) of a new file at `path` inside HAB_SCRATCH."""
    if _SCRATCH is None:
        raise _refuse(
            PermissionError,
            f"path {_quote(path)} cannot be written: the worker has no scratch directory "
            "(HAB_SCRATCH)",
            "path_outside_scratch",
        )

    def outside(why):
        return _refuse(
            PermissionError,
            f"path {_quote(path)} {why}; hab's worker writes only inside its scratch "
            f"directory {_SCRATCH}",
            "path_outside_scratch",
        )

    rest = str(path)
    if os.path.isabs(rest):
        if rest != _SCRATCH and not rest.startswith(_SCRATCH.rstrip("/") + "/"):
            raise outside("is outside the scratch directory")
        rest = rest[len(_SCRATCH):]
    parts = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise outside("contains `..`")
        parts.append(part)
    if not parts:
        raise outside("names no file")

    def is_link(dir_fd, name):
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def broken_rule(err, dir_fd, name):
        if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST) and is_link(dir_fd, name):
            return _refuse(
                PermissionError,
                f"path {_quote(path)} goes through the symbolic link {_quote(name)}; hab's "
                f"worker follows no link inside its scratch directory {_SCRATCH}",
                "path_through_symlink",
            )
        if err.errno == errno.EEXIST:
            return _refuse(
                FileExistsError,
                f"path {_quote(path)} already exists; hab's worker creates new files only "
                "and never truncates or deletes a file it did not create",
                "file_exists",
            )
        return err

    parent = os.open(_SCRATCH, os.O_DIRECTORY | os.O_RDONLY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_DIRECTORY | os.O_NOFOLLOW | os.O_RDONLY, dir_fd=parent)
            except OSError as e:
                raise broken_rule(e, parent, part) from None
            os.close(parent)
            parent = nxt
        name = parts[-1]
        try:
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                0o644,
                dir_fd=parent,
            )
        except OSError as e:
            raise broken_rule(e, parent, name) from None
    except BaseException:
        os.close(parent)
        raise
    return parent, name, fd


@app.task(name="hab.write_zeros")
def write_zeros(path, nbytes):
    nbytes = int(nbytes)
    if nbytes > _MAX_WRITE_BYTES:
        raise _limit(
            "write_limit",
            f"write_zeros of {nbytes} bytes",
            "max_write_bytes",
            f"of {_MAX_WRITE_BYTES} bytes",
        )
    parent, name, fd = _open_new_in_scratch(path)
    try:
        st = os.statvfs(_SCRATCH)
        free = st.f_bavail * st.f_frsize
        if nbytes > free:
            raise _refuse(
                ValueError,
                f"write_zeros of {nbytes} bytes exceeds the free space of the scratch "
                f"directory {_SCRATCH} ({free} bytes free)",
                "write_free_space",
            )
        created = os.fstat(fd)
        zeros = bytes(CHUNK)
        try:
            left = nbytes
            while left > 0:
                n = min(left, CHUNK)
                os.write(fd, zeros[:n] if n < CHUNK else zeros)
                left -= n
            os.fdatasync(fd)
        finally:
            os.close(fd)
            fd = None
            # Delete the name only while it is still the file created here.
            try:
                now = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
                    os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
    finally:
        if fd is not None:
            os.close(fd)
            os.unlink(name, dir_fd=parent)
        os.close(parent)
    return nbytes


@app.task(name="hab.factorial")
def factorial(n):
    if int(n) > _MAX_FACTORIAL_N:
        raise _limit(
            "factorial_limit", f"factorial({n})", "max_factorial_n", f"n <= {_MAX_FACTORIAL_N}"
        )
    x = math.factorial(int(n))
    # Decimal digits without str(x) (quadratic, and capped by sys.int_max_str_digits).
    k = max(int(math.log10(x)) if x > 0 else 0, 0)
    while 10 ** (k + 1) <= x:
        k += 1
    while k > 0 and 10**k > x:
        k -= 1
    return k + 1
