from django.http import HttpResponse
from django.urls import path


def django_view(request, rest=""):
    return HttpResponse(f"django:{request.path}", content_type="text/plain")


urlpatterns = [
    path("django/", django_view),
    path("api/not-a-route/", django_view),
]
