from django.urls import path

from partners.api import views

urlpatterns = [
    path("partners/", views.PartnerListView.as_view(), name="api-partner-list"),
    path("partners/scorecard/", views.ScorecardView.as_view(), name="api-partner-scorecard"),
    path(
        "partners/<int:pk>/incidents/",
        views.PartnerIncidentListView.as_view(),
        name="api-partner-incidents",
    ),
]
