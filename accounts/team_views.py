"""The team page (members, pending invitations, invite form, history), a member's edit page,
and the invitation link.

Owners manage the team; managers read the team page (no forms, no buttons; a manager's post is
the 403 page); staff get the 403 page. Views parse, authorize and call one service of
accounts.services.team, whose refusals go back next to the field they name.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views import View

from accounts.errors import DomainError
from accounts.models import INVITATION_DAYS, Invitation, Membership, Role, TeamEvent
from accounts.services.team import (
    InvitationUnavailable,
    accept_invitation,
    account_exists,
    deactivate_member,
    invite_member,
    member_for,
    pending_invitation,
    reactivate_member,
    resend_invitation,
    revoke_invitation,
    update_member,
)
from accounts.settings_views import add_domain_error
from accounts.team_forms import AcceptInvitationForm, InviteForm, MemberForm
from accounts.tenancy import SESSION_ORG_KEY, TenantPageMixin, roles_sentence

HISTORY_PAGE_SIZE = 25


def describe_event(event: TeamEvent) -> str:
    """The history's 'what' column: the subject and what changed, from the event's detail."""
    detail = event.detail or {}
    parts = [event.subject_label] if event.subject_label else []
    if "before" in detail and "after" in detail:
        before, after = detail["before"], detail["after"]
        if isinstance(before, list):
            before = ", ".join(before) or "every location"
            after = ", ".join(after) or "every location"
        parts.append(f"{before} → {after}")
    elif detail.get("role"):
        parts.append(f"as {detail['role']}")
        if detail.get("locations"):
            parts.append(f"at {', '.join(detail['locations'])}")
    changes = detail.get("changes")
    if isinstance(changes, dict):  # settings and locations: {field: {"old": …, "new": …}}
        parts.append(
            "; ".join(
                f"{field.replace('_', ' ')}: {change.get('old')} → {change.get('new')}"
                for field, change in changes.items()
                if isinstance(change, dict)
            )
        )
    if detail.get("replaced"):
        parts.append("(replaced the earlier invitation)")
    if detail.get("reactivated"):
        parts.append("(returning member)")
    return " ".join(parts)


class TeamPage(TenantPageMixin, View):
    required_roles: tuple[str, ...] = (Role.OWNER, Role.MANAGER)

    def require_owner(self) -> None:
        if not self.tenant.is_owner:
            raise PermissionDenied(roles_sentence((Role.OWNER,)))

    def member(self, pk: int) -> Membership:
        member = member_for(self.tenant.organization, pk)
        if member is None:
            raise Http404("No such member.")
        return member

    def invitation(self, pk: int) -> Invitation:
        invitation = (
            Invitation.objects.for_tenant(self.tenant)
            .filter(pk=pk)
            .select_related("organization")
            .first()
        )
        if invitation is None:
            raise Http404("No such invitation.")
        return invitation

    def all_locations(self) -> Any:
        return self.tenant.locations()


class TeamView(TeamPage):
    def render_page(
        self, request: HttpRequest, form: InviteForm | None = None, status: int = 200
    ) -> HttpResponse:
        members = (
            self.tenant.memberships()
            .select_related("user")
            .prefetch_related("locations")
            .order_by("-is_active", "user__name", "user__email")
        )
        # Expired ones too: the owner resends them from here.
        pending = (
            Invitation.objects.for_tenant(self.tenant)
            .filter(accepted_at__isnull=True, revoked_at__isnull=True)
            .prefetch_related("locations")
        )
        history = Paginator(
            TeamEvent.objects.for_tenant(self.tenant).select_related("actor"),
            HISTORY_PAGE_SIZE,
        ).get_page(request.GET.get("page"))
        context = {
            "settings_section": "team",
            "can_edit": self.tenant.is_owner,
            "invitation_days": INVITATION_DAYS,
            "members": members,
            "invitations": pending,
            "form": form or InviteForm(locations=self.all_locations()),
            "history": history,
            "history_lines": [(event, describe_event(event)) for event in history],
        }
        return render(request, "accounts/team.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        self.require_owner()
        form = InviteForm(request.POST, locations=self.all_locations())
        if form.is_valid():
            try:
                result = invite_member(
                    organization=self.tenant.organization,
                    actor=request.user,  # type: ignore[arg-type]
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    locations=form.cleaned_data["locations"],
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                email = result.invitation.email
                messages.success(
                    request,
                    f"Sent a new invitation to {email}; the earlier link no longer works."
                    if result.outcome == "replaced"
                    else f"Sent an invitation to {email}.",
                )
                return redirect("team")
        return self.render_page(request, form, status=400)


class MemberView(TeamPage):
    """One member: role and location limits, deactivate or reactivate. Owners only."""

    required_roles = (Role.OWNER,)

    def render_form(
        self, request: HttpRequest, member: Membership, form: MemberForm, status: int = 200
    ) -> HttpResponse:
        context = {"settings_section": "team", "member": member, "form": form}
        return render(request, "accounts/team_member.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(pk)
        form = MemberForm(
            initial={"role": member.role, "locations": list(member.locations.all())},
            locations=self.all_locations(),
        )
        return self.render_form(request, member, form)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(pk)
        form = MemberForm(request.POST, locations=self.all_locations())
        if form.is_valid():
            try:
                changed = update_member(
                    membership=member,
                    actor=request.user,  # type: ignore[arg-type]
                    role=form.cleaned_data["role"],
                    locations=form.cleaned_data["locations"],
                )
            except DomainError as error:
                add_domain_error(form, error)
                status = error.status_code if error.status_code in (400, 409) else 400
                return self.render_form(request, member, form, status=status)
            messages.success(
                request,
                f"Saved {member.user.display_name}." if changed else "Nothing changed.",
            )
            return redirect("team")
        return self.render_form(request, member, form, status=400)


class MemberActiveView(TeamPage):
    """Deactivate (their access ends at their next request) or reactivate a member."""

    required_roles = (Role.OWNER,)
    activate = False

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(pk)
        service = reactivate_member if self.activate else deactivate_member
        try:
            service(membership=member, actor=request.user)  # type: ignore[arg-type]
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("team-member", pk=member.pk)
        done = "Reactivated" if self.activate else "Deactivated"
        messages.success(request, f"{done} {member.user.display_name}.")
        return redirect("team")


class InvitationActionView(TeamPage):
    required_roles = (Role.OWNER,)
    action = "revoke"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        invitation = self.invitation(pk)
        actor = request.user
        try:
            if self.action == "resend":
                resend_invitation(invitation=invitation, actor=actor)  # type: ignore[arg-type]
                messages.success(
                    request, f"Sent a new link to {invitation.email}; the old one no longer works."
                )
            elif revoke_invitation(invitation=invitation, actor=actor):  # type: ignore[arg-type]
                messages.success(request, f"Revoked the invitation of {invitation.email}.")
        except DomainError as error:
            messages.error(request, error.message)
        return redirect("team")


class InvitationAcceptView(View):
    """The link in an invitation email. Works signed out: a new person sets their name and
    password; someone with an account (the invited email) logs in first, then joins.

    Expired, revoked, used and unknown links all get one 410 page that says none of which."""

    def gone(self, request: HttpRequest) -> HttpResponse:
        context = {"invitation_days": INVITATION_DAYS}
        response = render(request, "accounts/invitation_gone.html", context, status=410)
        add_never_cache_headers(response)
        return response

    def render_form(
        self,
        request: HttpRequest,
        invitation: Invitation,
        form: AcceptInvitationForm | None,
        status: int = 200,
        error: str = "",
    ) -> HttpResponse:
        has_account = account_exists(invitation.email)
        context = {
            "invitation": invitation,
            "form": form if not has_account else None,
            "has_account": has_account,
            "error": error,
            "login_url": f"{reverse('login')}?next={request.path}",
        }
        response = render(request, "accounts/invitation_accept.html", context, status=status)
        # The token is in the URL: kept out of caches (and, by the site's same-origin
        # Referrer-Policy, out of other sites' logs; no-referrer would make the form's POST
        # carry `Origin: null`, which the CSRF check refuses).
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        invitation = pending_invitation(token)
        if invitation is None:
            return self.gone(request)
        return self.render_form(request, invitation, AcceptInvitationForm())

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        invitation = pending_invitation(token)
        if invitation is None:
            return self.gone(request)
        user = request.user if request.user.is_authenticated else None
        form = None if user is not None else AcceptInvitationForm(request.POST)
        if form is not None and not form.is_valid():
            return self.render_form(request, invitation, form, status=400)
        try:
            membership = accept_invitation(
                raw_token=token,
                user=user,
                name=form.cleaned_data["name"] if form else "",
                password=form.cleaned_data["password"] if form else "",
            )
        except InvitationUnavailable:
            return self.gone(request)
        except DomainError as error:
            if form is not None:
                add_domain_error(form, error)
            return self.render_form(
                request, invitation, form, status=400, error="" if form else error.message
            )
        if user is None:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        # Straight into the organization they joined, whatever they had open before.
        request.session[SESSION_ORG_KEY] = membership.organization_id
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return redirect("pos" if membership.role == Role.STAFF else "customer-search")
