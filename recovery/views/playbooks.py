"""The playbook pages: what to do about each kind of bad experience, in matching order."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError, NotFoundError
from recovery.experiments import end_experiment, save_variant
from recovery.forms import EndExperimentForm, PlaybookForm, VariantForm
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
    """The playbook form, and on a saved playbook its action experiment: the page posts one
    of three forms, told apart by `op` (save the playbook, save a variant, end the
    experiment), so the experiment needs no routes of its own."""

    OPS = ("save", "variant", "end_experiment")

    def _playbook(self, pk: int | None) -> Playbook:
        if pk is None:
            return Playbook(organization=self.tenant.organization)
        playbook = Playbook.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if playbook is None:
            raise Http404("No such playbook.")
        return playbook

    def _page(
        self,
        request: HttpRequest,
        playbook: Playbook,
        *,
        form: PlaybookForm | None = None,
        variant_form: VariantForm | None = None,
        end_form: EndExperimentForm | None = None,
        problem: str = "",
        status: int = 200,
    ) -> HttpResponse:
        variants = list(playbook.variants.all()) if playbook.pk else []
        active = [v for v in variants if v.is_active]
        running = playbook.experiment_ended_at is None and len(active) >= 2
        context = {
            "form": form or PlaybookForm(instance=playbook),
            "playbook": playbook,
            "variants": [
                (
                    v,
                    variant_form
                    if variant_form is not None and variant_form.data.get("variant") == str(v.pk)
                    else VariantForm(
                        initial={
                            "name": v.name,
                            "actions_text": "\n".join(v.actions),
                            "is_active": v.is_active,
                        },
                        prefix=f"v{v.pk}",
                    ),
                )
                for v in variants
            ],
            "new_variant_form": (
                variant_form
                if variant_form is not None and not variant_form.data.get("variant")
                else VariantForm(prefix="new")
            ),
            "running": running,
            "end_form": end_form or EndExperimentForm(variants=active),
            "problem": problem,
        }
        return render(request, "recovery/playbook_form.html", context, status=status)

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        return self._page(request, self._playbook(pk))

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        playbook = self._playbook(pk)
        op = request.POST.get("op", "save")
        problem = (
            f"op: one of {', '.join(self.OPS)}."
            if op not in self.OPS
            else "op: save the playbook first, then add variants."
            if op != "save" and playbook.pk is None
            else ""
        )
        if problem:
            return self._page(request, playbook, problem=problem, status=400)
        if op == "variant":
            return self._save_variant(request, playbook)
        if op == "end_experiment":
            return self._end_experiment(request, playbook)
        form = PlaybookForm(request.POST, instance=Playbook(organization=playbook.organization))
        if not form.is_valid():
            return self._page(request, playbook, form=form, status=400)
        if playbook.pk:
            update_playbook(playbook=playbook, **form.playbook_fields())
        else:
            create_playbook(organization=self.tenant.organization, **form.playbook_fields())
        return redirect("playbooks")

    def _save_variant(self, request: HttpRequest, playbook: Playbook) -> HttpResponse:
        """`variant`: the id of the variant changed (unprefixed), none for a new one; each
        variant's fields carry its own prefix so errors land on the form that was sent."""
        raw = request.POST.get("variant", "").strip()
        if raw and not raw.isdigit():
            problem = "variant: not a variant of this playbook."
            return self._page(request, playbook, problem=problem, status=400)
        data = request.POST.copy()
        data["variant"] = raw  # _page reads it to show the errors on the right form
        variant_form = VariantForm(data, prefix=f"v{raw}" if raw else "new")
        if variant_form.is_valid():
            try:
                save_variant(
                    playbook=playbook,
                    variant_id=int(raw) if raw else None,
                    name=variant_form.cleaned_data["name"],
                    actions=variant_form.cleaned_data["actions_text"],
                    is_active=variant_form.cleaned_data["is_active"],
                    now=timezone.now(),
                )
            except NotFoundError as exc:
                raise Http404(exc.message) from exc
            except DomainError as exc:
                field = "actions_text" if (exc.field or "").startswith("actions") else "name"
                variant_form.add_error(field, exc.message)
            else:
                messages.success(request, "Variant saved.")
                return redirect("playbook-edit", pk=playbook.pk)
        return self._page(request, playbook, variant_form=variant_form, status=400)

    def _end_experiment(self, request: HttpRequest, playbook: Playbook) -> HttpResponse:
        active = list(playbook.variants.active())
        form = EndExperimentForm(request.POST, variants=active)
        if form.is_valid():
            try:
                end_experiment(
                    playbook=playbook,
                    kept_variant_id=form.cleaned_data["kept_variant"],
                    now=timezone.now(),
                )
            except DomainError as exc:
                form.add_error("kept_variant", exc.message)
                return self._page(request, playbook, end_form=form, status=exc.status_code)
            messages.success(
                request, "Experiment ended; the kept variant's actions are the playbook's now."
            )
            return redirect("playbook-edit", pk=playbook.pk)
        return self._page(request, playbook, end_form=form, status=400)
