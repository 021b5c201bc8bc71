from django.contrib import admin

from .models import Item, Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "created"]
    search_fields = ["title", "body"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "in_stock", "created"]
    search_fields = ["name", "description"]
