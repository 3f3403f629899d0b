"""The site's URLs, plus one that fails, so that the tests can see the 500 page."""

from __future__ import annotations

from django.urls import path

from nanoweb.urls import urlpatterns as site


def broken(request):
    raise RuntimeError("a deliberate failure, to show the 500 page")


urlpatterns = [path("broken", broken), *site]
