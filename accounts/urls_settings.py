from django.urls import path

from accounts import settings_views as views

urlpatterns = [
    path("", views.GeneralSettingsView.as_view(), name="settings"),
    path("locations/", views.LocationsView.as_view(), name="settings-locations"),
    path("locations/<int:pk>/", views.LocationEditView.as_view(), name="settings-location-edit"),
    path(
        "locations/<int:pk>/archive/",
        views.LocationArchiveView.as_view(),
        name="settings-location-archive",
    ),
    path(
        "locations/<int:pk>/restore/",
        views.LocationRestoreView.as_view(),
        name="settings-location-restore",
    ),
]
