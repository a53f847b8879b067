from django.urls import path

from recovery.views import cases, playbooks, queue, till

pos_urlpatterns = [
    path("", till.PosView.as_view(), name="pos"),
    path("location/", till.PosLocationView.as_view(), name="pos-location"),
    path("lookup/", till.PosLookupView.as_view(), name="pos-lookup"),
    path("customers/<int:pk>/", till.PosCustomerView.as_view(), name="pos-customer"),
    path("customers/<int:pk>/log/", till.PosLogView.as_view(), name="pos-log"),
    path("cases/<int:pk>/<str:action>/", till.PosCaseActionView.as_view(), name="pos-case"),
]

urlpatterns = [
    path("", queue.QueueView.as_view(), name="queue"),
    path("cases.csv", queue.QueueExportView.as_view(), name="queue-export"),
    path("bulk/", queue.QueueBulkView.as_view(), name="queue-bulk"),
    path("digest/", queue.DigestToggleView.as_view(), name="digest"),
    path("cases/<int:pk>/", cases.CasePageView.as_view(), name="case-page"),
    path("cases/<int:pk>/<str:action>/", queue.QueueCaseActionView.as_view(), name="queue-case"),
    path("playbooks/", playbooks.PlaybookListView.as_view(), name="playbooks"),
    path("playbooks/new/", playbooks.PlaybookEditView.as_view(), name="playbook-new"),
    path("playbooks/<int:pk>/", playbooks.PlaybookEditView.as_view(), name="playbook-edit"),
    path(
        "playbooks/<int:pk>/<str:direction>/",
        playbooks.PlaybookMoveView.as_view(),
        name="playbook-move",
    ),
]
