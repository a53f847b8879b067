from django.urls import path

from connectors.api import views

urlpatterns = [
    path("connectors/square/", views.SquareConnectionView.as_view(), name="api-square-connection"),
    path(
        "connectors/square/<str:token>/",
        views.SquareNotificationView.as_view(),
        name="square-notifications",
    ),
    path("connectors/reasons/", views.ReasonMapView.as_view(), name="api-reason-map"),
    path("checks/", views.CheckCreateView.as_view(), name="api-check-create"),
]
