from django.urls import path

from partners import views

urlpatterns = [
    path("", views.PartnerListView.as_view(), name="partners"),
    path("new/", views.PartnerEditView.as_view(), name="partner-new"),
    path("scorecard/", views.ScorecardView.as_view(), name="partner-scorecard"),
    path("scorecard.csv", views.ScorecardCsvView.as_view(), name="partner-scorecard-csv"),
    path("<int:pk>/", views.PartnerPageView.as_view(), name="partner-page"),
    path("<int:pk>/edit/", views.PartnerEditView.as_view(), name="partner-edit"),
    path("incidents/<int:pk>/", views.IncidentActionView.as_view(), name="partner-incident"),
]
