from django.urls import path

from recovery import views

urlpatterns = [
    path("playbooks/", views.PlaybookListView.as_view(), name="playbooks"),
    path("playbooks/new/", views.PlaybookEditView.as_view(), name="playbook-new"),
    path("playbooks/<int:pk>/", views.PlaybookEditView.as_view(), name="playbook-edit"),
    path(
        "playbooks/<int:pk>/<str:direction>/",
        views.PlaybookMoveView.as_view(),
        name="playbook-move",
    ),
]
