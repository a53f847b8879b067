from django.urls import path

from accounts import signup_views as views

urlpatterns = [
    path("signup/", views.SignupView.as_view(), name="signup"),
    path(
        "switch-organization/",
        views.SwitchOrganizationView.as_view(),
        name="switch-organization",
    ),
    path("profile/", views.ProfileView.as_view(), name="profile"),
]
