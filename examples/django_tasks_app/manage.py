#!/usr/bin/env python
"""Django Tasks on Conveyor. ``python manage.py migrate``, ``python manage.py runserver``, and
``python manage.py conveyor_worker conveyor.integrations.django_tasks:worker`` (from this
folder)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasksite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
