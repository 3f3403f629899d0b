from __future__ import annotations

from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin
from django.http import HttpRequest

from nanoweb.sso.models import SignInPolicy

# The identity provider comes from settings (OIDC_*), never from rows: hide allauth's own forms for it.
admin.site.unregister(SocialApp)
admin.site.unregister(SocialToken)


@admin.register(SignInPolicy)
class SignInPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "invited_only", "updated_at"]
    list_editable = ["invited_only"]
    list_display_links = None

    def get_queryset(self, request: HttpRequest):
        SignInPolicy.current()  # the one row, there to edit even if the migration's was flushed
        return super().get_queryset(request)

    # Every staff member may change it, as they edit budgets, without a model permission.
    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
