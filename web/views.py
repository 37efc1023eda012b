"""The browser app: pages that call the JSON API; no business logic here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@login_required
@ensure_csrf_cookie
def app_page(request: HttpRequest) -> HttpResponse:
    """Render the shop (and, for staff, the back office) for the signed-in user."""
    return render(request, "web/app.html", {"is_staff": request.user.is_staff})
