from django.urls import path

from .auth import LogoutAllApi, LogoutApi, ObtainTokenApi

urlpatterns = [
    path("auth/token/", ObtainTokenApi.as_view(), name="auth-token"),
    path("auth/logout/", LogoutApi.as_view(), name="auth-logout"),
    path("auth/logout-all/", LogoutAllApi.as_view(), name="auth-logout-all"),
]
