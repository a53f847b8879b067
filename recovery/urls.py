from django.urls import path

from recovery import views

pos_urlpatterns = [
    path("", views.PosView.as_view(), name="pos"),
    path("location/", views.PosLocationView.as_view(), name="pos-location"),
    path("lookup/", views.PosLookupView.as_view(), name="pos-lookup"),
    path("customers/<int:pk>/", views.PosCustomerView.as_view(), name="pos-customer"),
    path("customers/<int:pk>/log/", views.PosLogView.as_view(), name="pos-log"),
    path("cases/<int:pk>/<str:action>/", views.PosCaseActionView.as_view(), name="pos-case"),
]

urlpatterns = [
    path("", views.QueueView.as_view(), name="queue"),
    path("cases.csv", views.QueueExportView.as_view(), name="queue-export"),
    path("bulk/", views.QueueBulkView.as_view(), name="queue-bulk"),
    path("digest/", views.DigestToggleView.as_view(), name="digest"),
    path("cases/<int:pk>/", views.CasePageView.as_view(), name="case-page"),
    path("cases/<int:pk>/<str:action>/", views.QueueCaseActionView.as_view(), name="queue-case"),
    path("playbooks/", views.PlaybookListView.as_view(), name="playbooks"),
    path("playbooks/new/", views.PlaybookEditView.as_view(), name="playbook-new"),
    path("playbooks/<int:pk>/", views.PlaybookEditView.as_view(), name="playbook-edit"),
    path(
        "playbooks/<int:pk>/<str:direction>/",
        views.PlaybookMoveView.as_view(),
        name="playbook-move",
    ),
]
