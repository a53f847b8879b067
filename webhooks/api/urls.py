from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks/", views.EndpointListView.as_view(), name="api-webhook-list"),
    path("webhooks/<int:pk>/", views.EndpointDetailView.as_view(), name="api-webhook-detail"),
    path("webhooks/<int:pk>/test/", views.EndpointTestView.as_view(), name="api-webhook-test"),
    path(
        "webhooks/<int:pk>/rotate-secret/",
        views.EndpointRotateSecretView.as_view(),
        name="api-webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:pk>/deliveries/",
        views.EndpointDeliveriesView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<int:pk>/replay/",
        views.DeliveryReplayView.as_view(),
        name="api-webhook-replay",
    ),
    path("events/", views.EventListView.as_view(), name="api-event-list"),
]
