"""The demo API's ergonomic helpers, included by demo/api.py:

- /api/catalog: a ModelViewSet of notes.models.Item (list with filters,
  ordering and page numbers; retrieve, create, replace, update, delete),
  its Structs made from the model;
- /api/notes: the notes, newest first, paginated by an opaque cursor;
- /api/stats: a class-based view.
"""

from __future__ import annotations

import datetime

import msgspec
from django.db.models import Count, Q
from notes.models import Item, Note

from meltemi.api import APIView, CursorPagination, ModelViewSet, PageNumberPagination, Router, paginate

router = Router()


class CatalogViewSet(ModelViewSet):
    """Items of the catalogue, as CRUD routes made from the model."""

    model = Item
    filter_fields = ["in_stock", "name__icontains", "price__gte", "price__lte"]
    ordering_fields = ["price", "name", "created"]
    ordering = ["id"]
    pagination = PageNumberPagination(page_size=10, max_page_size=100)
    tags = ["catalog"]


router.register("/catalog", CatalogViewSet, name="catalog")


class NoteOut(msgspec.Struct):
    id: int
    title: str
    body: str
    created: datetime.datetime


@router.get("/notes", tags=["notes"])
@paginate(CursorPagination, ordering=("-created",), page_size=10)
def list_notes(q: str | None = None) -> list[NoteOut]:
    """The notes, newest first (follow `next`)."""
    notes = Note.objects.all()
    return notes.filter(Q(title__icontains=q) | Q(body__icontains=q)) if q else notes


class Stats(msgspec.Struct):
    notes: int
    items: int
    items_in_stock: int


@router.view("/stats", name="stats", tags=["misc"])
class StatsView(APIView):
    def get(self) -> Stats:
        """How many notes and items there are."""
        counts = Item.objects.aggregate(items=Count("id"), in_stock=Count("id", filter=Q(in_stock=True)))
        return Stats(Note.objects.count(), counts["items"], counts["in_stock"])
