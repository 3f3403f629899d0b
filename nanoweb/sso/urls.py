from django.urls import path

from nanoweb.sso import views

# The names are allauth's: it reverses them to build the login and redirect (callback) URLs.
urlpatterns = [
    path("sso/<slug:provider_id>/login", views.login, name="openid_connect_login"),
    path("sso/<slug:provider_id>/callback", views.callback, name="openid_connect_callback"),
]
