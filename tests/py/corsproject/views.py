"""Views that answer every method, and a count of the requests that reached Django."""

import threading

from django.http import HttpResponse, JsonResponse

_lock = threading.Lock()
_calls = 0


class CountingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        global _calls
        with _lock:
            _calls += 1
        return self.get_response(request)


def anything(request, rest=""):
    return HttpResponse(b"ok", content_type="text/plain")


def count(request):
    return JsonResponse({"calls": _calls})
