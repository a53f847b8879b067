from django.contrib import admin
from django.urls import include, path
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from cxcore import audit_views, views
from cxcore.api.errors import api_or_page
from cxcore.csp_reports import csp_report
from recovery.urls import pos_urlpatterns
from recovery.views.customers import CustomerMergeView
from recovery.views.health import readyz
from recovery.views.insights import InsightsView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="customer-search"), name="home"),
    path("admin/", admin.site.urls),
    path("readyz", readyz, name="readyz"),
    path("csp-report/", csp_report, name="csp-report"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("accounts.urls_signup")),
    path("settings/", include("accounts.urls_settings")),
    path("settings/team/", include("accounts.urls_team")),
    path("settings/import/", include("imports.urls")),
    path("", include("accounts.urls_devices")),
    path("customers/", views.CustomerSearchView.as_view(), name="customer-search"),
    path("customers/<int:pk>/", views.CustomerPageView.as_view(), name="customer-page"),
    path("customers/<int:pk>/notes/", views.CustomerNotesView.as_view(), name="customer-notes"),
    path(
        "customers/<int:pk>/outreach/",
        views.CustomerOutreachView.as_view(),
        name="customer-outreach",
    ),
    path(
        "customers/<int:pk>/experience/",
        views.CustomerExperienceView.as_view(),
        name="customer-experience",
    ),
    path(
        "customers/<int:pk>/audit/",
        audit_views.ReadAuditPageView.as_view(),
        name="customer-audit",
    ),
    path("audit/", audit_views.ReadAuditPageView.as_view(), name="audit"),
    # Merging is recovery's (it moves cases too): the project's URLs may name both apps.
    path("customers/<int:pk>/merge/", CustomerMergeView.as_view(), name="customer-merge"),
    path("recovery/", include("recovery.urls")),
    path("pos/", include(pos_urlpatterns)),
    path("insights/", InsightsView.as_view(), name="insights"),
    path("settings/webhooks/", include("webhooks.urls")),
    path("settings/connections/", include("connectors.urls")),
    path("partners/", include("partners.urls")),
    path("api/v1/", include("cxcore.api.urls")),
    path("api/v1/", include("recovery.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("connectors.api.urls")),
    path("api/v1/", include("partners.api.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # Our own page around Swagger UI: a way back to the app, and our favicon. The split
        # view serves Swagger UI's start-up script at ?script=, not inline: the CSP refuses
        # inline scripts.
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="cxcore/api_docs.html"
        ),
        name="api-docs",
    ),
]

# Unmatched /api/ URLs and server errors there answer JSON like the rest of the API.
handler404 = api_or_page(defaults.page_not_found, 404, "not_found", "No such endpoint.")
handler500 = api_or_page(defaults.server_error, 500, "server_error", "Server error.")
