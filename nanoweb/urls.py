from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "nanoweb administration"
admin.site.site_title = "nanoweb admin"

urlpatterns = [
    path("login", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("nanoweb.machine")),
    path("", include("nanoweb.studio.urls")),
    path("", include("nanoweb.credits.urls")),
    path("", include("nanoweb.providers.urls")),
    path("", include("nanoweb.boards.urls")),
    path("", include("nanoweb.batches.urls")),
]
