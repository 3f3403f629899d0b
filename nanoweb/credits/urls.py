from django.urls import path

from nanoweb.credits import views

urlpatterns = [
    path("credits/review", views.credit_review, name="credit_review"),
    path("credits/review/ledger.csv", views.ledger_csv, name="ledger_csv"),
    path("credits/budgets/<int:user_id>", views.edit_budget, name="edit_budget"),
]
