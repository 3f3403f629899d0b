from __future__ import annotations

from django.contrib import admin

from nanoweb.quotas.models import StorageQuota, quota_bytes
from nanoweb.studio.references import uploaded_bytes


@admin.register(StorageQuota)
class StorageQuotaAdmin(admin.ModelAdmin):
    """Staff see each member's quota beside what their uploads take, and change it."""

    list_display = ["user", "megabytes", "used"]
    list_editable = ["megabytes"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    readonly_fields = ["used"]

    @admin.display(description="used now")
    def used(self, quota: StorageQuota) -> str:
        if not quota.user_id:
            return "—"
        used, limit = uploaded_bytes(quota.user), quota_bytes(quota.user)
        return f"{used / 1024 / 1024:.1f} MB of {limit / 1024 / 1024:.0f} MB"
