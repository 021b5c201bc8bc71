"""ModelViewSet: the CRUD routes of a Django model in one class.

    class ItemViewSet(ModelViewSet):
        model = Item
        filter_fields = ["in_stock", "price__gte", "name__icontains"]
        ordering_fields = ["price", "name", "created"]
        pagination = PageNumberPagination(page_size=20)

    api.register("/items", ItemViewSet)

gives, under the API's prefix:

    GET    /items         list (filters, ?ordering=-price,name, paginated)   name "item-list"
    POST   /items         create (201)                                       name "item-list"
    GET    /items/{pk}    retrieve                                           name "item-detail"
    PUT    /items/{pk}    update (every field; those left out get their default)
    PATCH  /items/{pk}    partial update (only the fields sent)
    DELETE /items/{pk}    delete (204)

The bodies and results are msgspec Structs: `out_schema`, `in_schema` and
`patch_schema` when declared, else made from the model's fields by
`model_struct` (``fields``/``exclude`` choose them; the primary key and
fields Django does not let users edit are output only). A missing row is
404; a body that does not fit the Struct, and a row that fails the model's
own validation (``full_clean``: max_digits, choices, unique, ...), are 422
in the API's shape, with ``loc`` ``["body", field]``.

`get_queryset()` (rows a request may see), `perform_create(obj)`,
`perform_update(obj)` and `perform_destroy(obj)` may be overridden; they run
with ``self.request`` set. `actions` limits the routes made.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

import msgspec
import msgspec.structs

from ._handlers import empty, make_handler
from .errors import HTTPException, ValidationError
from .openapi import humanize
from .pagination import CursorPagination, Pagination, paginated
from .params import Depends, Query
from .request import Request
from .responses import Response

__all__ = ["ModelViewSet", "model_struct"]

ACTIONS = ("list", "create", "retrieve", "update", "partial_update", "destroy")


# ---- Structs from models ----


def field_type(field: Any) -> Any:
    """The Python type of a Django model field's value (None added when the field is nullable)."""
    from django.db import models

    if field.is_relation:
        tp = field_type(field.target_field)
        tp = strip_null(tp)
    elif field.choices:
        values = tuple(value for value, _ in field.flatchoices)
        tp = Literal[values] if values else str
    elif isinstance(field, models.BooleanField):
        tp = bool
    elif isinstance(field, (models.AutoField, models.BigAutoField, models.SmallAutoField)):
        tp = int
    elif isinstance(field, (models.PositiveIntegerField, models.PositiveSmallIntegerField)):
        tp = Annotated[int, msgspec.Meta(ge=0)]
    elif isinstance(field, models.IntegerField):
        tp = int
    elif isinstance(field, models.FloatField):
        tp = float
    elif isinstance(field, models.DecimalField):
        tp = decimal.Decimal
    elif isinstance(field, models.DateTimeField):
        tp = datetime.datetime
    elif isinstance(field, models.DateField):
        tp = datetime.date
    elif isinstance(field, models.TimeField):
        tp = datetime.time
    elif isinstance(field, models.DurationField):
        tp = datetime.timedelta
    elif isinstance(field, models.UUIDField):
        tp = uuid.UUID
    elif isinstance(field, models.JSONField):
        tp = Any
    elif isinstance(field, models.BinaryField):
        tp = bytes
    elif isinstance(field, (models.CharField, models.TextField)):
        tp = Annotated[str, msgspec.Meta(max_length=field.max_length)] if field.max_length else str
    elif isinstance(field, models.FileField):
        tp = str
    else:
        tp = Any
    if field.null and tp is not Any:
        tp = Union[tp, None]  # noqa: UP007 - tp may be a Literal or Annotated
    return tp


def strip_null(tp: Any) -> Any:
    from .signature import strip_optional

    return strip_optional(tp)


def _model_fields(model: Any, fields: Sequence[str] | None, exclude: Sequence[str]) -> list[Any]:
    chosen = []
    for f in model._meta.concrete_fields:
        if fields is not None and f.name not in fields and f.attname not in fields:
            continue
        if f.name in exclude or f.attname in exclude:
            continue
        chosen.append(f)
    if fields is not None:
        known = {f.name for f in chosen} | {f.attname for f in chosen}
        unknown = [n for n in fields if n not in known]
        if unknown:
            raise ValueError(f"{model.__name__} has no field {unknown[0]!r}")
    return chosen


def writable(field: Any) -> bool:
    """Whether clients may set the field (not the automatic primary key, not an auto_now date, editable)."""
    from django.db import models

    if not field.editable:
        return False
    return not (field.primary_key and isinstance(field, (models.AutoField, models.BigAutoField, models.SmallAutoField)))


def model_struct(
    model: Any,
    *,
    name: str | None = None,
    fields: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    input: bool = False,
    partial: bool = False,
) -> type[msgspec.Struct]:
    """A Struct of `model`'s fields (a foreign key as its column, ``author_id``).

    The output kind (default) has every chosen field, required. ``input=True``
    keeps the fields clients may write; those with a default, or that may be
    blank or null, are optional (left out, the model's default applies).
    ``partial=True`` makes every field optional (a PATCH body)."""
    kind = "Patch" if partial else "In" if input else "Out"
    chosen = _model_fields(model, fields, exclude)
    out = []
    for f in chosen:
        if (input or partial) and not writable(f):
            continue
        tp = field_type(f)
        optional = partial or (input and (f.has_default() or f.blank or f.null))
        if optional:
            out.append((f.attname, Union[tp, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
        else:
            out.append((f.attname, tp))
    out.sort(key=lambda t: len(t) == 3)
    return msgspec.defstruct(
        name or f"{model.__name__}{kind}",
        out,
        forbid_unknown_fields=input or partial,
        module=getattr(model, "__module__", None),
    )


def partial_struct(struct: type[msgspec.Struct], name: str | None = None) -> type[msgspec.Struct]:
    """`struct` with every field optional (msgspec.UNSET when left out): a PATCH body."""
    out = [(f.name, Union[f.type, msgspec.UnsetType], msgspec.UNSET) for f in msgspec.structs.fields(struct)]  # noqa: UP007
    rename = {f.name: f.encode_name for f in msgspec.structs.fields(struct) if f.encode_name != f.name}
    return msgspec.defstruct(
        name or f"{struct.__name__}Patch",
        out,
        forbid_unknown_fields=struct.__struct_config__.forbid_unknown_fields,
        rename=rename or None,
        module=struct.__module__,
    )


# ---- the viewset ----


class ModelViewSet:
    """See the module's doc. Class attributes configure it."""

    model: Any = None
    out_schema: Any = None
    in_schema: Any = None
    patch_schema: Any = None
    fields: Sequence[str] | None = None  # for the Structs made from the model
    exclude: Sequence[str] = ()
    filter_fields: Sequence[str] = ()
    ordering_fields: Sequence[str] = ()
    ordering: Sequence[str] = ()  # the list's order when ?ordering is not given
    pagination: Pagination | None = None
    actions: Sequence[str] = ACTIONS
    tags: Sequence[str] | None = None
    dependencies: Sequence[Depends] = ()
    lookup: str = "pk"  # the path parameter and the field rows are found by

    request: Request

    # ---- hooks ----

    def get_queryset(self) -> Any:
        return self.model._default_manager.all()

    def get_object(self, key: Any) -> Any:
        field = "pk" if self.lookup == "pk" else self.lookup
        try:
            return self.get_queryset().get(**{field: key})
        except self.model.DoesNotExist:
            raise HTTPException(404, f"{self.model._meta.verbose_name} {key} not found") from None

    def perform_create(self, obj: Any) -> None:
        obj.save()

    def perform_update(self, obj: Any) -> None:
        obj.save()

    def perform_destroy(self, obj: Any) -> None:
        obj.delete()

    # ---- the actions ----

    def list_rows(self, filters: dict[str, Any], ordering: str | None) -> Any:
        rows = self.get_queryset()
        given = {k: v for k, v in filters.items() if v is not None}
        if given:
            rows = rows.filter(**given)
        order = _parse_ordering(ordering, self.ordering_fields) if ordering else list(self.ordering)
        if order:
            rows = rows.order_by(*order)
        elif not rows.ordered:
            rows = rows.order_by("pk")  # pages of an unordered QuerySet may overlap
        return rows

    def create(self, data: msgspec.Struct) -> Any:
        obj = self.model()
        self._validate(obj, self._apply(obj, data, reset=False))
        self.perform_create(obj)
        return obj

    def update(self, key: Any, data: msgspec.Struct) -> Any:
        obj = self.get_object(key)
        self._validate(obj, self._apply(obj, data, reset=True))
        self.perform_update(obj)
        return obj

    def partial_update(self, key: Any, data: msgspec.Struct) -> Any:
        obj = self.get_object(key)
        self._validate(obj, self._apply(obj, data, reset=False))
        self.perform_update(obj)
        return obj

    def destroy(self, key: Any) -> None:
        self.perform_destroy(self.get_object(key))

    def _apply(self, obj: Any, data: msgspec.Struct, reset: bool) -> list[str]:
        """Sets the fields `data` has; with `reset`, those it leaves out to
        their default. Returns the fields not sent (their values, the model's
        own, are not validated again: an empty default of a field that may
        not be blank is the model's choice, not the client's)."""
        fields = {f.attname: f for f in self.model._meta.concrete_fields}
        not_sent = []
        for f in msgspec.structs.fields(data):
            value = getattr(data, f.name)
            model_field = fields.get(f.name)
            if value is msgspec.UNSET:
                if model_field is not None:
                    not_sent.append(model_field.name)
                if not reset or model_field is None:
                    continue
                value = model_field.get_default()
            setattr(obj, f.name, value)
        return not_sent

    def _validate(self, obj: Any, exclude: list[str]) -> None:
        from django.core.exceptions import NON_FIELD_ERRORS
        from django.core.exceptions import ValidationError as DjangoValidationError

        try:
            obj.full_clean(exclude=exclude)
        except DjangoValidationError as exc:
            attnames = {f.name: f.attname for f in self.model._meta.concrete_fields}
            errors = []
            for name, messages in exc.message_dict.items():
                loc = ["body"] if name == NON_FIELD_ERRORS else ["body", attnames.get(name, name)]
                errors.extend({"loc": loc, "msg": m, "type": "value_error"} for m in messages)
            raise ValidationError(errors) from None


def _parse_ordering(value: str, allowed: Sequence[str]) -> list[str]:
    order = []
    for part in value.split(","):
        part = part.strip()
        if part.lstrip("-") not in allowed:
            choices = ", ".join(allowed) or "none"
            raise ValidationError(
                [
                    {
                        "loc": ["query", "ordering"],
                        "msg": f"Cannot order by {part!r} (fields: {choices}, '-' for descending)",
                        "type": "value_error",
                    }
                ]
            )
        order.append(part)
    return order


# ---- the routes ----


def _param(name: str, annotation: Any, default: Any = empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_REQUEST = "_viewset_request"
_STRING_LOOKUPS = {"contains", "icontains", "startswith", "istartswith", "endswith", "iendswith", "iexact", "regex"}


def _filter_parameters(model: Any, names: Sequence[str]) -> list[inspect.Parameter]:
    params = []
    for entry in names:
        field_name, _, lookup = entry.partition("__")
        field = model._meta.get_field(field_name)
        tp = strip_null(field_type(field))
        if lookup == "in":
            tp = list[tp]
        elif lookup == "isnull":
            tp = bool
        elif lookup in _STRING_LOOKUPS:
            tp = str
        elif lookup not in ("", "exact", "gt", "gte", "lt", "lte"):
            raise ValueError(f"filter {entry!r}: lookup {lookup!r} is not supported")
        params.append(_param(entry, Annotated[tp | None, Query(description=f"Filter: {entry}")], None))
    return params


def register(router: Any, prefix: str, viewset: type[ModelViewSet], name: str | None = None) -> None:
    """Adds `viewset`'s routes under `prefix` (see the module's doc)."""
    cls = viewset
    model = cls.model
    if model is None:
        raise TypeError(f"{cls.__qualname__}: set `model` to a Django model")
    unknown = set(cls.actions) - set(ACTIONS)
    if unknown:
        raise ValueError(f"{cls.__qualname__}: unknown action {sorted(unknown)[0]!r}")
    meta = model._meta
    base = name or meta.model_name
    tags = list(cls.tags) if cls.tags is not None else [str(meta.verbose_name_plural)]
    out_schema = cls.out_schema or model_struct(model, fields=cls.fields, exclude=cls.exclude)
    in_schema = cls.in_schema or model_struct(model, fields=cls.fields, exclude=cls.exclude, input=True)
    patch_schema = cls.patch_schema or (
        model_struct(model, fields=cls.fields, exclude=cls.exclude, partial=True)
        if cls.in_schema is None
        else partial_struct(in_schema)
    )
    lookup_field = meta.pk if cls.lookup == "pk" else meta.get_field(cls.lookup)
    key_type = strip_null(field_type(lookup_field))
    key = cls.lookup
    detail = f"{prefix}/{{{key}}}"
    verbose, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
    if isinstance(cls.pagination, CursorPagination) and cls.ordering_fields:
        raise TypeError(f"{cls.__qualname__}: cursor pagination has its own order; leave ordering_fields empty")

    def instance(kwargs: dict[str, Any]) -> ModelViewSet:
        view = cls()
        view.request = kwargs.pop(_REQUEST)
        return view

    common = {"tags": tags, "dependencies": list(cls.dependencies)}
    request = _param(_REQUEST, Request)
    pk = _param(key, key_type)

    if "list" in cls.actions:
        filters = _filter_parameters(model, cls.filter_fields)
        filter_names = [p.name for p in filters]
        paginated_list = cls.pagination is not None
        params = [request, *filters]
        if cls.ordering_fields:
            described = ", ".join(cls.ordering_fields)
            params.append(
                _param(
                    "ordering",
                    Annotated[str | None, Query(description=f"Comma-separated, '-' for descending: {described}")],
                    None,
                )
            )

        def list_call(kwargs: dict[str, Any]) -> Any:
            view = instance(kwargs)
            rows = view.list_rows({n: kwargs[n] for n in filter_names}, kwargs.get("ordering"))
            return rows if paginated_list else list(rows)

        handler = make_handler(f"{base}_list", f"{cls.__qualname__}.list", params, list[out_schema], list_call)
        handler.__doc__ = f"List {plural}."
        if cls.pagination is not None:
            handler = paginated(handler, cls.pagination, out_schema)
        router.add_route(
            prefix, handler, ("GET",), name=f"{base}-list", operation_id=f"{base}_list",
            summary=humanize(f"list {plural}"), **common,
        )  # fmt: skip

    if "create" in cls.actions:

        def create_call(kwargs: dict[str, Any]) -> Any:
            return instance(kwargs).create(kwargs["payload"])

        handler = make_handler(
            f"{base}_create", f"{cls.__qualname__}.create", [request, _param("payload", in_schema)], out_schema,
            create_call, doc=f"Create a {verbose}.",
        )  # fmt: skip
        router.add_route(
            prefix, handler, ("POST",), status=201, name=f"{base}-list", operation_id=f"{base}_create",
            summary=humanize(f"create {verbose}"), **common,
        )  # fmt: skip

    not_found = {404: f"No such {verbose}"}
    if "retrieve" in cls.actions:

        def retrieve_call(kwargs: dict[str, Any]) -> Any:
            return instance(kwargs).get_object(kwargs[key])

        handler = make_handler(
            f"{base}_retrieve", f"{cls.__qualname__}.retrieve", [request, pk], out_schema, retrieve_call,
            doc=f"One {verbose}.",
        )  # fmt: skip
        router.add_route(
            detail, handler, ("GET",), name=f"{base}-detail", operation_id=f"{base}_retrieve",
            summary=humanize(f"get {verbose}"), responses=not_found, **common,
        )  # fmt: skip

    if "update" in cls.actions:

        def update_call(kwargs: dict[str, Any]) -> Any:
            return instance(kwargs).update(kwargs[key], kwargs["payload"])

        handler = make_handler(
            f"{base}_update", f"{cls.__qualname__}.update", [request, pk, _param("payload", in_schema)], out_schema,
            update_call, doc=f"Replace every field of a {verbose} (fields left out get their default).",
        )  # fmt: skip
        router.add_route(
            detail, handler, ("PUT",), name=f"{base}-detail", operation_id=f"{base}_update",
            summary=humanize(f"replace {verbose}"), responses=not_found, **common,
        )  # fmt: skip

    if "partial_update" in cls.actions:

        def patch_call(kwargs: dict[str, Any]) -> Any:
            return instance(kwargs).partial_update(kwargs[key], kwargs["payload"])

        handler = make_handler(
            f"{base}_partial_update", f"{cls.__qualname__}.partial_update",
            [request, pk, _param("payload", patch_schema)], out_schema, patch_call,
            doc=f"Change the given fields of a {verbose}.",
        )  # fmt: skip
        router.add_route(
            detail, handler, ("PATCH",), name=f"{base}-detail", operation_id=f"{base}_partial_update",
            summary=humanize(f"update {verbose}"), responses=not_found, **common,
        )  # fmt: skip

    if "destroy" in cls.actions:

        def destroy_call(kwargs: dict[str, Any]) -> Any:
            instance(kwargs).destroy(kwargs[key])
            return Response(status=204)

        handler = make_handler(
            f"{base}_destroy", f"{cls.__qualname__}.destroy", [request, pk], None, destroy_call,
            doc=f"Delete a {verbose}.",
        )  # fmt: skip
        router.add_route(
            detail, handler, ("DELETE",), status=204, name=f"{base}-detail", operation_id=f"{base}_destroy",
            summary=humanize(f"delete {verbose}"), responses=not_found, **common,
        )  # fmt: skip
