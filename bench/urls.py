"""The app's URLs, plus bare DRF views running the floor SQL for the HTTP figures."""

from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from bench import floor
from cxcore.urls import urlpatterns as app_urlpatterns


class FloorView(APIView):
    authentication_classes = ()
    permission_classes = ()


class SidebarFloor(FloorView):
    def get(self, request):
        customer, prompts, episodes = floor.sidebar(
            int(request.query_params["org"]), request.query_params["phone"]
        )
        return Response({"customer": customer, "prompts": prompts, "episodes": episodes})


class WriteFloor(FloorView):
    def post(self, request):
        data = request.data
        episode_id = floor.write_episode(
            data["org"], data["customer"], data["location"], timezone.now()
        )
        return Response({"id": episode_id}, status=201)


urlpatterns = [
    path("bench/floor/sidebar/", SidebarFloor.as_view()),
    path("bench/floor/write/", WriteFloor.as_view()),
    *app_urlpatterns,
]
