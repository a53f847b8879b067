from django.urls import path

from accounts import team_views as views

urlpatterns = [
    path("", views.TeamView.as_view(), name="team"),
    path("members/<int:pk>/", views.MemberView.as_view(), name="team-member"),
    path(
        "members/<int:pk>/deactivate/",
        views.MemberActiveView.as_view(activate=False),
        name="team-member-deactivate",
    ),
    path(
        "members/<int:pk>/reactivate/",
        views.MemberActiveView.as_view(activate=True),
        name="team-member-reactivate",
    ),
    path(
        "invitations/<int:pk>/resend/",
        views.InvitationActionView.as_view(action="resend"),
        name="team-invitation-resend",
    ),
    path(
        "invitations/<int:pk>/revoke/",
        views.InvitationActionView.as_view(action="revoke"),
        name="team-invitation-revoke",
    ),
]
