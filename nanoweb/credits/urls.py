from django.urls import path

from nanoweb.credits import views

urlpatterns = [
    path("credits/review", views.credit_review, name="credit_review"),
    path("credits/review/ledger.csv", views.ledger_csv, name="ledger_csv"),
    path("credits/budgets/<int:user_id>", views.edit_budget, name="edit_budget"),
    path("team", views.team, name="team"),
    path("team/members", views.add_member, name="add_member"),
    path("team/members/<int:user_id>/grant", views.grant_credit, name="grant_credit"),
    path("team/members/<int:user_id>/active", views.member_active, name="member_active"),
]
