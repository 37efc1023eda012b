from django.contrib.auth import views as auth_views
from django.urls import path

from .views import app_page

urlpatterns = [
    path("", app_page, name="app"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
