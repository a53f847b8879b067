from django.urls import path

from cxcore.api import audit, privacy, views

urlpatterns = [
    path("episodes/", views.EpisodeCreateView.as_view(), name="api-episode-create"),
    path("episodes/bulk/", views.EpisodeBulkView.as_view(), name="api-episode-bulk"),
    path("episodes/<int:pk>/", views.EpisodeDetailView.as_view(), name="api-episode-detail"),
    path(
        "episodes/<int:pk>/experience/",
        views.EpisodeExperienceView.as_view(),
        name="api-episode-experience",
    ),
    path("customers/", views.CustomerListView.as_view(), name="api-customer-list"),
    path("customers/lookup/", views.CustomerLookupView.as_view(), name="api-customer-lookup"),
    path("customers/<int:pk>/", views.CustomerDetailView.as_view(), name="api-customer-detail"),
    path(
        "customers/<int:pk>/timeline/",
        views.CustomerTimelineView.as_view(),
        name="api-customer-timeline",
    ),
    path(
        "customers/<int:pk>/export/",
        privacy.CustomerExportView.as_view(),
        name="api-customer-export",
    ),
    path(
        "customers/<int:pk>/erase/",
        privacy.CustomerEraseView.as_view(),
        name="api-customer-erase",
    ),
    path("locations/", views.LocationListView.as_view(), name="api-location-list"),
    path("audit/", audit.ReadAuditListView.as_view(), name="api-read-audit"),
]
