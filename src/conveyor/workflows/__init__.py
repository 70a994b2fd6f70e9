"""Workflows: flows (a parent runs after its children, on any queue; ``chain`` and ``chord``
build the common shapes) and batches with callbacks. See docs/workflows.md.

Modules: ``models`` (the pure shapes), ``commands`` (the Ops), ``adding`` (adding flows and
batches), ``settling`` (delivering outcomes to parents and batches, crash-safe), ``reading``,
``api`` (the Queue / SyncQueue methods), ``worker`` (what a worker does for workflows).
"""

from .models import BatchInfo, Callback, ChildFailure, FlowJob, OnFailure, chain, chord

__all__ = ["BatchInfo", "Callback", "ChildFailure", "FlowJob", "OnFailure", "chain", "chord"]
