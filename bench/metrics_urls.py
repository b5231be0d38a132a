import ctypes
import os

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns: list[URLPattern | URLResolver] = [path("trivial/", trivial)]

# bench_metrics.py's instruction count: two requests that zero and dump callgrind's counters
# (valgrind client requests, through a tiny library the benchmark compiles). Outside valgrind
# they do nothing; without BENCH_CALLGRIND_LIB they do not exist.
if os.environ.get("BENCH_CALLGRIND_LIB"):
    from maintenance import state

    _callgrind = ctypes.CDLL(os.environ["BENCH_CALLGRIND_LIB"])
    # Work done once a second would, under valgrind's ~30x slowdown, run once every ~30
    # requests instead of every ~1,000, and more often for whichever set-up runs slower:
    # the maintenance flag's one-second cache is held for the count (as the flush thread is).
    state._TTL = float("inf")

    def callgrind_zero(request: HttpRequest) -> HttpResponse:
        _callgrind.ops_callgrind_zero()
        return HttpResponse(b"ok", content_type="text/plain")

    def callgrind_dump(request: HttpRequest) -> HttpResponse:
        _callgrind.ops_callgrind_dump()
        return HttpResponse(b"ok", content_type="text/plain")

    urlpatterns += [
        path("__callgrind/zero/", callgrind_zero),
        path("__callgrind/dump/", callgrind_dump),
    ]

urlpatterns.append(path("", include("opsconsole.urls")))
