from __future__ import annotations

from django.contrib import admin

from nanoweb.providers.models import Attempt
from nanoweb.studio.models import GeneratedImage, Generation


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
    list_display = ["id", "owner", "account", "model", "status", "error_kind", "created_at", "finished_at"]
    list_filter = ["status", "account", "error_kind"]
    search_fields = ["prompt", "provider_task_id"]
    date_hierarchy = "created_at"
    inlines = [AttemptInline, GeneratedImageInline]
    exclude = ["callback_token"]
    readonly_fields = [
        "uuid", "owner", "account", "model", "model_name", "automatic", "prompt", "aspect_ratio", "resolution",
        "output_format", "google_search", "status", "progress", "provider_task_id", "provider_cost", "error_kind",
        "error_message", "error_detail", "retryable", "created_at", "submitted_at", "finished_at",
        "next_poll_at", "poll_count", "attempts", "waiting_reason",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False
