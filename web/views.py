"""The browser app: pages that call the JSON API; no business logic here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@login_required
@ensure_csrf_cookie
def app_page(request: HttpRequest) -> HttpResponse:
    """Render the shop (and, for staff, the back office) for the signed-in user."""
    return render(request, "web/app.html", {"is_staff": request.user.is_staff})


class LoginView(auth_views.LoginView):
    """Sign in; the demo users' passwords are shown only when DEBUG is on."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["show_demo_users"] = settings.DEBUG
        return context
