from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

admin.site.site_header = "nanoweb administration"
admin.site.site_title = "nanoweb admin"

urlpatterns = [
    path("login", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    # A new member's link from the Team page (Django's password-reset token: once, and it expires).
    path(
        "welcome/<uidb64>/<token>",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/welcome.html", success_url=reverse_lazy("login")
        ),
        name="welcome",
    ),
    path("admin/", admin.site.urls),
    path("", include("nanoweb.sso.urls")),
    path("", include("nanoweb.machine")),
    path("", include("nanoweb.studio.urls")),
    path("", include("nanoweb.credits.urls")),
    path("", include("nanoweb.providers.urls")),
    path("", include("nanoweb.boards.urls")),
    path("", include("nanoweb.api.urls")),
    path("", include("nanoweb.batches.urls")),
]
