from django.urls import path

from webhooks import views

urlpatterns = [
    path("", views.WebhookSettingsView.as_view(), name="webhook-settings"),
    path("<int:pk>/", views.WebhookEndpointActionView.as_view(), name="webhook-endpoint-action"),
]
