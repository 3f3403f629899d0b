from django.contrib import admin

from nanoweb.boards.models import Board


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "private", "created_at"]
    list_filter = ["private"]
    search_fields = ["name"]
    raw_id_fields = ["cover"]
