from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("stream/", views.stream, name="stream"),
    path("download/", views.download, name="download"),
    path("session/", views.session_counter, name="session"),
    path("hello/", views.hello, name="hello"),
    path("hello/template/", views.hello_template, name="hello-template"),
    path("slow/", views.slow, name="slow"),
    path("boom/", views.boom, name="boom"),
]
