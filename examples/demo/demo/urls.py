from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("notes.urls")),
]

# Static and media files.  Django serves them itself only while DEBUG is on
# (`static()` and `staticfiles_urlpatterns()` return nothing otherwise),
# because in production a web server is expected to do it.  The demo must also
# work with DEBUG off (the tests check the production 404/500 pages that way),
# so it then serves the output of `collectstatic` and the media directory
# through django.views.static.serve — fine for a demo, slow and unhardened for
# production, where meltemi's static file serving or a CDN does the job.
if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()
else:
    urlpatterns += [
        re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
    ]
urlpatterns += [
    re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
]
