from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from conveyor.integrations.django import get_queue


@csrf_exempt  # an API endpoint for the example; keep CSRF on for browser forms
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    email = json.loads(request.body or b"{}").get("email")
    if not email:
        return JsonResponse({"error": "email is required"}, status=400)
    job = get_queue("email").add("welcome", {"to": email}, attempts=3)
    return JsonResponse({"job": job.id}, status=201)


@require_GET
def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    job = get_queue("email").get_job(job_id)
    if job is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse({"id": job.id, "state": job.state.value, "result": job.result})
