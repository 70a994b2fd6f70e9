"""Django's Tasks framework on Conveyor: the project in examples/django_tasks_app, each step in
its own interpreter (Django's settings are per process), against a real Redis.

``@task`` functions enqueue as jobs, ``manage.py conveyor_worker
conveyor.integrations.django_tasks:worker`` runs them, and results (return values, errors with
their class and traceback, context, priorities, ``run_after``) are read back through the
backend; ``enqueue_on_commit`` sends a task only when the order's transaction commits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.processes import REPO_ROOT, python_env

from conveyor import JobState, SyncQueue

pytestmark = pytest.mark.timeout(120)

PROJECT = REPO_ROOT / "examples" / "django_tasks_app"
TARGET = "conveyor.integrations.django_tasks:worker"

SETUP = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasksite.settings")
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
"""

ENQUEUE = (
    SETUP
    + """
import datetime as dt
from billing.models import Order
from billing.tasks import add, charge, receipt, shout

order = Order.objects.create(item="book")
results = {
    "add": add.enqueue(2, 3),
    "low": add.using(priority=-10).enqueue(1, 1),
    "charge": charge.enqueue(250),
    "receipt": receipt.enqueue(order.pk),
    "shout": shout.enqueue("hi"),
    "later": add.using(run_after=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).enqueue(0, 0),
}
print(json.dumps({k: [r.id, r.status, r.task.queue_name] for k, r in results.items()}))
"""
)

READ = (
    SETUP
    + """
from billing.tasks import add
try:
    from django.tasks import default_task_backend
except ImportError:
    from django_tasks import default_task_backend

ids = json.loads(sys.argv[1])
out = {}
for key, rid in ids.items():
    r = default_task_backend.get_result(rid)
    out[key] = {
        "status": r.status,
        "value": r.return_value if r.status == "SUCCESSFUL" else None,
        "errors": [[e.exception_class_path, e.traceback] for e in r.errors],
        "attempts": r.attempts,
        "args": r.args,
        "started": r.started_at.timestamp() if r.started_at else None,
        "finished": r.finished_at is not None,
        "task": r.task.module_path,
    }
assert add.get_result(ids["add"]).return_value == 5  # through the Task, too
try:
    default_task_backend.get_result("no-such-result")
except Exception as exc:
    out["missing"] = type(exc).__name__
print(json.dumps(out))
"""
)


def run(
    args: list[str], tmp_path: Path, redis_url: str, prefix: str
) -> subprocess.CompletedProcess[str]:
    env = python_env(
        {"REDIS_URL": redis_url, "CONVEYOR_PREFIX": prefix, "EXAMPLE_DB": str(tmp_path / "db")}
    )
    env["PYTHONPATH"] = f"{PROJECT}:{env['PYTHONPATH']}"
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=90,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_tasks_enqueue_run_on_a_worker_and_report_results(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    enqueued = json.loads(ok(run(["-c", ENQUEUE], tmp_path, redis_url, key_prefix)))
    assert {status for _, status, _ in enqueued.values()} == {"READY"}
    ids = {key: rid for key, (rid, _, _) in enqueued.items()}

    # What reached Redis: one django_task job per enqueue, priority and run_after mapped.
    with SyncQueue("default", url=redis_url, prefix=key_prefix) as default:
        job = default.get_job(ids["add"])
        assert job is not None and job.name == "django_task"
        assert job.data["task"] == "billing.tasks.add" and job.data["args"] == [2, 3]
        assert job.priority == 5
        low = default.get_job(ids["low"])
        assert low is not None and low.priority == -10
        later = default.get_job(ids["later"])
        assert later is not None and later.state is JobState.DELAYED
        assert later.run_at is not None and later.created_at is not None
        assert 3_590_000 < later.run_at - later.created_at < 3_610_000
    with SyncQueue("emails", url=redis_url, prefix=key_prefix) as emails:
        assert emails.get_job(ids["receipt"]) is not None

    # One slot, so the run order shows the priorities: 5 before -10.
    ok(
        run(
            ["manage.py", "conveyor_worker", TARGET, "--burst", "--concurrency", "1"],
            tmp_path,
            redis_url,
            key_prefix,
        )
    )
    results = json.loads(ok(run(["-c", READ, json.dumps(ids)], tmp_path, redis_url, key_prefix)))
    assert results["add"]["status"] == "SUCCESSFUL" and results["add"]["value"] == 5
    assert results["add"]["attempts"] == 1 and results["add"]["finished"]
    assert results["add"]["task"] == "billing.tasks.add" and results["add"]["args"] == [2, 3]
    assert results["low"]["value"] == 2
    assert results["add"]["started"] <= results["low"]["started"]
    assert results["shout"]["value"] == "HI"  # an async task
    assert results["receipt"]["value"]["attempt"] == 1  # the context, and the ORM
    failed = results["charge"]
    assert failed["status"] == "FAILED" and len(failed["errors"]) == 1
    path, traceback = failed["errors"][0]
    assert path == "billing.errors.PaymentDeclined"
    assert "card declined for 250" in traceback and "Traceback" in traceback
    assert results["later"]["status"] == "READY" and not results["later"]["finished"]
    assert results["missing"] == "TaskResultDoesNotExist"


ON_COMMIT = (
    SETUP
    + """
from django.test import Client
client = Client()
kept = client.get("/orders/", {"item": "lamp"})
assert kept.status_code == 201, kept.content
try:
    client.get("/orders/", {"item": "vase", "fail": "1"})
except RuntimeError:
    pass
from billing.models import Order
from django.db import transaction
from conveyor.errors import ConfigurationError
from conveyor.integrations.django import add_on_commit

with transaction.atomic():
    add_on_commit("emails", "plain", {"n": 1})  # a plain Conveyor job, same rule
try:
    with transaction.atomic():
        add_on_commit("emails", "plain", {"n": 2})
        raise RuntimeError
except RuntimeError:
    pass
refused = ""
try:
    add_on_commit("emails", "plain", {}, atempts=2)
except ConfigurationError as exc:
    refused = str(exc)
print(json.dumps({"kept": kept.json()["order"], "orders": Order.objects.count(),
                  "refused": refused}))
"""
)


def test_on_commit_helpers_send_only_committed_work(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    out = json.loads(ok(run(["-c", ON_COMMIT], tmp_path, redis_url, key_prefix)))
    assert out["orders"] == 1  # the failed view rolled back
    assert "unknown job options ['atempts']" in out["refused"]
    with SyncQueue("emails", url=redis_url, prefix=key_prefix) as emails:
        jobs = emails.get_jobs("waiting", 0, -1, newest_first=False)
        assert [job.data.get("args") for job in jobs if job.name == "django_task"] == [
            [out["kept"]]
        ]
        assert [job.data for job in jobs if job.name == "plain"] == [{"n": 1}]


BAD_CONFIG = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tasksite.settings"
import django
from django.conf import settings
django.setup()
from django.test.utils import override_settings
try:
    from django.tasks import task_backends
    from django.tasks.exceptions import InvalidTaskError
except ImportError:
    from django_tasks import task_backends
    from django_tasks.exceptions import InvalidTaskError
from billing.tasks import add

messages = []
try:
    add.using(queue_name="nowhere").enqueue(1, 2)
except InvalidTaskError as exc:
    messages.append(str(exc))
bad = dict(settings.TASKS["default"], OPTIONS={"url": "redis://x", "colour": "red"})
with override_settings(TASKS={"default": bad}):
    try:
        task_backends["default"]
    except Exception as exc:
        messages.append(f"{type(exc).__name__}: {exc}")
print("\\n".join(messages))
"""


def test_bad_queues_and_options_are_refused_clearly(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    out = ok(run(["-c", BAD_CONFIG], tmp_path, redis_url, key_prefix))
    assert "Queue 'nowhere' is not valid for backend" in out
    assert "ConfigurationError" in out and "unknown keys ['colour']" in out


ENQUEUE_ONE = (
    SETUP
    + """
from billing.tasks import add
print(add.enqueue(20, 22).id)
"""
)


def test_plain_conveyor_worker_sets_django_up_itself(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    result_id = ok(run(["-c", ENQUEUE_ONE], tmp_path, redis_url, key_prefix)).strip()
    cli = "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tasksite.settings'\n"
    cli += "from conveyor.cli import main; main()"
    ok(run(["-c", cli, "worker", TARGET, "--burst"], tmp_path, redis_url, key_prefix))
    with SyncQueue("default", url=redis_url, prefix=key_prefix) as default:
        job = default.get_job(result_id)
        assert job is not None and job.state is JobState.COMPLETED and job.result == 42
