"""Shared till tablets (accounts/device_views.py), mounted at the project root."""

from django.urls import URLPattern, path

from accounts import device_views

urlpatterns: list[URLPattern] = [
    path("settings/devices/", device_views.DeviceListView.as_view(), name="devices"),
    path(
        "settings/devices/<int:pk>/revoke/",
        device_views.DeviceRevokeView.as_view(),
        name="device-revoke",
    ),
    path(
        "settings/devices/pins/<int:membership_id>/reset/",
        device_views.PinResetView.as_view(),
        name="pin-reset",
    ),
    path("till/pair/<str:token>/", device_views.DevicePairView.as_view(), name="device-pair"),
    path("till/switch/", device_views.TillSwitchView.as_view(), name="till-switch"),
    path("accounts/pin/", device_views.PinSetView.as_view(), name="pin-set"),
]
