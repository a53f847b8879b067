from django.urls import path

from connectors import views

urlpatterns = [
    path("", views.ConnectorSettingsView.as_view(), name="connector-settings"),
    path("square/revoke/", views.SquareRevokeView.as_view(), name="connector-square-revoke"),
    path("reasons/", views.ReasonMapPageView.as_view(), name="connector-reasons"),
]
