from django.urls import path

from imports import views

urlpatterns = [
    path("", views.ImportView.as_view(), name="import"),
    path("<int:pk>/", views.ImportBatchView.as_view(), name="import-batch"),
    path("<int:pk>/confirm/", views.ImportConfirmView.as_view(), name="import-confirm"),
    path("<int:pk>/undo/", views.ImportUndoView.as_view(), name="import-undo"),
    path("<int:pk>/rejected.csv", views.ImportRejectedView.as_view(), name="import-rejected"),
]
