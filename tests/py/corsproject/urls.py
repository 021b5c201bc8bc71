from django.urls import path

from . import views

urlpatterns = [
    path("count", views.count),
    path("", views.anything),
    path("<path:rest>", views.anything),
]
