import hashlib
import time

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from .forms import NoteForm, UploadForm
from .models import Note
from .sample import SAMPLE_NAME, ensure_sample_file


def int_param(request, name, default, low, high):
    """An integer query parameter clamped to [low, high]; None when it is not an integer."""
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        return None
    return max(low, min(high, value))


def home(request):
    """A form that creates a Note (POST, CSRF-protected, then redirect) above the list of notes."""
    if request.method == "POST":
        form = NoteForm(request.POST)
        if form.is_valid():
            form.save()
            return redirect("home")
    else:
        form = NoteForm()
    return render(request, "notes/home.html", {"form": form, "notes": Note.objects.all()[:50]})


def upload(request):
    """Saves an uploaded file into MEDIA_ROOT/uploads/ and shows the size and SHA-256 of what arrived."""
    result = None
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            uploaded = form.cleaned_data["file"]
            digest = hashlib.sha256()
            size = 0
            for chunk in uploaded.chunks():
                digest.update(chunk)
                size += len(chunk)
            uploaded.seek(0)
            saved = default_storage.save("uploads/" + uploaded.name, uploaded)
            result = {
                "name": uploaded.name,
                "size": size,
                "sha256": digest.hexdigest(),
                "content_type": uploaded.content_type,
                "url": default_storage.url(saved),
            }
    else:
        form = UploadForm()
    return render(request, "notes/upload.html", {"form": form, "result": result})


def stream(request):
    """A StreamingHttpResponse of `n` lines (default 100), optionally `delay_ms` apart."""
    lines = int_param(request, "n", 100, 0, 100_000)
    delay_ms = int_param(request, "delay_ms", 0, 0, 5_000)
    if lines is None or delay_ms is None:
        return HttpResponseBadRequest("n and delay_ms must be integers\n", content_type="text/plain")

    def generate():
        for i in range(1, lines + 1):
            if delay_ms and i > 1:
                time.sleep(delay_ms / 1000)
            yield f"line {i:05d} of {lines:05d}\n"

    return StreamingHttpResponse(generate(), content_type="text/plain; charset=utf-8")


def download(request):
    """The generated sample file as an attachment (FileResponse: wsgi.file_wrapper, Content-Length)."""
    path = ensure_sample_file()
    return FileResponse(path.open("rb"), as_attachment=True, filename=SAMPLE_NAME)


def session_counter(request):
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return JsonResponse({"visits": visits})


def hello(request):
    """The plainest Django view, for benchmarks (it still passes through the project's middleware)."""
    return HttpResponse(b"Hello, World!", content_type="text/plain")


def hello_template(request):
    """A realistic small page for benchmarks: middleware, a session read and a template render."""
    return render(request, "notes/hello.html", {"visits": request.session.get("visits", 0)})


def slow(request):
    """Sleeps `ms` milliseconds (at most 60 s) like a view blocked on I/O, then answers."""
    ms = int_param(request, "ms", 100, 0, 60_000)
    if ms is None:
        return HttpResponseBadRequest("ms must be an integer\n", content_type="text/plain")
    time.sleep(ms / 1000)
    return HttpResponse(f"slept {ms} ms\n", content_type="text/plain")


def boom(request):
    raise RuntimeError("boom: a deliberate error from the demo's /boom/ view")
