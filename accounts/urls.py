from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import password_views, team_views, views
from accounts.forms import EmailAuthenticationForm

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=EmailAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api-keys/", views.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/<int:pk>/revoke/", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("pos-embedding/", views.EmbedOriginsView.as_view(), name="pos-embedding"),
    path("unlock-login/", views.LoginUnlockView.as_view(), name="unlock-login"),
    path(
        "invitations/<str:token>/",
        team_views.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    # Django's own password views, under the names its templates and emails expect.
    path(
        "password_reset/",
        password_views.RateLimitedPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        password_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "password_change/",
        password_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
