from django.urls import path

from nanoweb.batches import views

urlpatterns = [
    path("batches", views.new_batch, name="new_batch"),
    path("batches/<int:pk>", views.batch_detail, name="batch"),
    path("batches/<int:pk>/progress", views.batch_progress, name="batch_progress"),
    path("batches/<int:pk>/cancel", views.cancel_batch, name="cancel_batch"),
    path("batches/<int:pk>/zip", views.batch_zip, name="batch_zip"),
]
