import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def index(request):
    return HttpResponse("Hello from Django")


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "body": request.body.decode(),
                         "path": request.path, "script_name": request.META.get("SCRIPT_NAME"),
                         "query": request.GET.dict(), "data": json.loads(request.body or "null")})
