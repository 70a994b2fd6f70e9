"""Conveyor inside web frameworks.

* ``conveyor.integrations.fastapi``: FastAPI and Starlette (lifespan, dependency, dashboard).
* ``conveyor.integrations.flask``: a Flask extension using the blocking ``SyncQueue``.
* ``conveyor.integrations.django``: Django settings, ``get_queue()`` and the
  ``manage.py conveyor_worker`` command (add ``"conveyor.integrations.django"`` to
  ``INSTALLED_APPS``), with ``add_on_commit`` / ``enqueue_on_commit``;
* ``conveyor.integrations.django_tasks``: a backend for Django's Tasks framework;
* ``conveyor.integrations.sqlalchemy``: ``add_after_commit`` on a session's commit.

Each has a runnable, tested example in ``examples/``.
"""
