from django.urls import path

from . import views

urlpatterns = [
    path("plaintext", views.plaintext),
    path("json", views.json_hello),
    path("async/plaintext", views.plaintext_async),
    path("async/json", views.json_hello_async),
    path("json10k", views.json_10k),
    path("json10k-gzip", views.json_10k_gzip),
    path("items/<int:item_id>", views.get_item),
    path("items", views.create_item),
    path("orm", views.orm_rows),
    path("page", views.page),
    path("wait", views.wait),
    path("wait-async", views.wait_async),
]
