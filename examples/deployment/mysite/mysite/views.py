"""Three views: log in, a page only a logged-in user sees, and a health check for the load balancer."""

import os

from django.contrib.auth import authenticate, login
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt  # an example API login; a browser form would carry Django's CSRF token instead
@require_POST
def login_view(request):
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        return HttpResponse("bad credentials\n", status=403, content_type="text/plain")
    login(request, user)
    return HttpResponse("ok\n", content_type="text/plain")


def me(request):
    """Who the session belongs to, which instance answered, and a counter shared by all of them (Redis)."""
    if not request.user.is_authenticated:
        return HttpResponse("not logged in\n", status=401, content_type="text/plain")
    key = f"hits:{request.user.pk}"
    cache.add(key, 0)
    return JsonResponse(
        {
            "user": request.user.get_username(),
            "instance": os.environ.get("MYSITE_INSTANCE", ""),
            "hits": cache.incr(key),
            "scheme": request.scheme,
            "client": request.META.get("REMOTE_ADDR", ""),
        }
    )


def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok\n", content_type="text/plain")
