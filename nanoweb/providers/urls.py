from django.urls import path

from nanoweb.providers import views

urlpatterns = [
    path("providers/health", views.provider_health, name="provider_health"),
    path("providers/<int:pk>/resume", views.resume_account, name="resume_account"),
]
