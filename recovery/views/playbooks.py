"""The playbook pages: what to do about each kind of bad experience, in matching order."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from recovery.forms import PlaybookForm
from recovery.models import Playbook
from recovery.services import create_playbook, reorder_playbooks, update_playbook
from recovery.views.managers import ManagersPageMixin


class PlaybookListView(ManagersPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        playbooks = Playbook.objects.for_tenant(self.tenant).order_by("position", "id")
        return render(request, "recovery/playbooks.html", {"playbooks": playbooks})


class PlaybookMoveView(ManagersPageMixin, View):
    """Move a playbook up or down the matching order (the first match wins)."""

    def post(self, request: HttpRequest, pk: int, direction: str) -> HttpResponse:
        order = list(
            Playbook.objects.for_tenant(self.tenant)
            .order_by("position", "id")
            .values_list("pk", flat=True)
        )
        if pk not in order or direction not in ("up", "down"):
            raise Http404("No such playbook.")
        i = order.index(pk)
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            try:
                reorder_playbooks(organization=self.tenant.organization, order=order)
            except DomainError:  # a playbook was added meanwhile: show the list as it is now
                messages.info(request, "The playbooks changed meanwhile; nothing was moved.")
        return redirect("playbooks")


class PlaybookEditView(ManagersPageMixin, View):
    def _playbook(self, pk: int | None) -> Playbook:
        if pk is None:
            return Playbook(organization=self.tenant.organization)
        playbook = Playbook.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if playbook is None:
            raise Http404("No such playbook.")
        return playbook

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        playbook = self._playbook(pk)
        return render(
            request,
            "recovery/playbook_form.html",
            {"form": PlaybookForm(instance=playbook), "playbook": playbook},
        )

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        playbook = self._playbook(pk)
        form = PlaybookForm(request.POST, instance=Playbook(organization=playbook.organization))
        if not form.is_valid():
            context = {"form": form, "playbook": playbook}
            return render(request, "recovery/playbook_form.html", context, status=400)
        if playbook.pk:
            update_playbook(playbook=playbook, **form.playbook_fields())
        else:
            create_playbook(organization=self.tenant.organization, **form.playbook_fields())
        return redirect("playbooks")
