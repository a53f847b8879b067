from django.urls import path

from recovery.api import evidence, views

urlpatterns = [
    path("cases/", views.CaseListView.as_view(), name="api-case-list"),
    path("cases/<int:pk>/", views.CaseDetailView.as_view(), name="api-case-detail"),
    path(
        "cases/<int:pk>/acknowledge/",
        views.CaseAcknowledgeView.as_view(),
        name="api-case-acknowledge",
    ),
    path("cases/<int:pk>/assign/", views.CaseAssignView.as_view(), name="api-case-assign"),
    path("cases/<int:pk>/resolve/", views.CaseResolveView.as_view(), name="api-case-resolve"),
    path("cases/<int:pk>/dismiss/", views.CaseDismissView.as_view(), name="api-case-dismiss"),
    path("cases/<int:pk>/not-now/", views.CaseNotNowView.as_view(), name="api-case-not-now"),
    path("sidebar/", views.SidebarView.as_view(), name="api-sidebar"),
    path("insights/summary/", views.InsightsSummaryView.as_view(), name="api-insights"),
    path(
        "insights/evidence/", evidence.InsightsEvidenceView.as_view(), name="api-insights-evidence"
    ),
    path("customers/<int:pk>/merge/", views.CustomerMergeView.as_view(), name="api-customer-merge"),
    path("visits/", views.VisitView.as_view(), name="api-visits"),
    path("playbooks/", views.PlaybookListView.as_view(), name="api-playbook-list"),
    path("playbooks/order/", views.PlaybookOrderView.as_view(), name="api-playbook-order"),
    path("playbooks/<int:pk>/", views.PlaybookDetailView.as_view(), name="api-playbook-detail"),
]
