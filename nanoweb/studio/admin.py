from __future__ import annotations

from django.contrib import admin, messages

from nanoweb.providers.models import Attempt
from nanoweb.quotas.models import StorageQuota, quota_bytes
from nanoweb.studio import history
from nanoweb.studio.models import GeneratedImage, Generation
from nanoweb.studio.references import uploaded_bytes


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    can_delete = False
    fields = ("index", "width", "height", "bytes", "mime_type", "sha256")
    readonly_fields = fields


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("account", "model_id", "started_at", "ended_at", "outcome", "error_kind", "message", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    """Jobs as a record: everything is read-only but `private`, which is saved alone. Status,
    claims, prices and results only ever move through the job engine's state machine, and a
    delete goes the member's way (files removed, the row and its ledger lines kept)."""

    list_display = ["id", "owner", "account", "model", "status", "error_kind", "created_at", "finished_at"]
    list_filter = ["status", "account", "error_kind"]
    search_fields = ["prompt", "provider_task_id"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline, GeneratedImageInline]
    exclude = ["callback_token"]
    actions = ["delete_as_the_member_would"]
    EDITABLE = ("private",)

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [f.name for f in Generation._meta.concrete_fields if f.name not in (*self.EDITABLE, "callback_token")]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a row deletion would drop its ledger lines' job; see the action instead

    def save_model(self, request, obj: Generation, form, change: bool) -> None:
        obj.save(update_fields=list(self.EDITABLE))

    @admin.action(description="Delete the selected jobs' images (as their owner would; the record stays)")
    def delete_as_the_member_would(self, request, queryset) -> None:
        for generation in queryset.filter(deleted_at__isnull=True):
            history.delete(generation)
        self.message_user(request, "Deleted: files removed, running jobs canceled and refunded.", messages.SUCCESS)


# Storage quotas are the quotas package's; their use is the studio's uploads (quotas sit below the studio).
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
