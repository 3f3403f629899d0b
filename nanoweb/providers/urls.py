from django.urls import path

from nanoweb.providers import views

urlpatterns = [
    path("providers/health", views.provider_health, name="provider_health"),
    path("providers/<int:pk>/resume", views.resume_account, name="resume_account"),
    path("providers/models", views.vendor_model_lists, name="vendor_model_lists"),
    path("providers/models/check", views.check_vendor_models, name="check_vendor_models"),
    path("providers/<int:pk>/models/add", views.add_vendor_model, name="add_vendor_model"),
]
