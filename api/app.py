"""create_app(config): the Falcon WSGI app, its middleware and one readable route table."""

from __future__ import annotations

import falcon
import orjson
from falcon import media

from rolebook.api import problems
from rolebook.api.auth import AuthMiddleware, Verifier
from rolebook.api.config import Config, database_limits
from rolebook.api.decision_log import DecisionLog
from rolebook.api.decision_shipper import HttpShipper
from rolebook.api.limits import BodyLimitMiddleware
from rolebook.api.mail import mailer_for
from rolebook.api.metrics import Metrics, MetricsMiddleware, MetricsResource, OutboxBacklog
from rolebook.api.policy_set import PolicySet, source_for
from rolebook.api.request_context import RequestContextMiddleware, RouteNames
from rolebook.api.request_params import ParamsMiddleware
from rolebook.api.resources import (
    accounts,
    audit,
    check,
    health,
    invitations,
    members,
    policies,
    policy_review,
)
from rolebook.api.resources.accept_page import AcceptPage
from rolebook.api.resources.admin_console import AdminConsole
from rolebook.api.services import Services
from rolebook.storage import Store
from rolebook.storage.account_cache import STAMPS_FILE, AccountCache, Stamps
from rolebook.storage.policies import PolicyFeed, listen_connector


def routes(services: Services) -> list[tuple[str, object]]:
    """Every route the service answers; a test checks this table against openapi.yaml."""
    return [
        ("/healthz", health.Health()),
        ("/readyz", health.Ready(services)),
        ("/metrics", MetricsResource(services)),
        ("/v1/check", check.CheckResource(services)),
        ("/v1/policies", policies.PolicyList(services)),
        ("/v1/policies/reload", policies.PolicyReload(services)),
        ("/v1/policies/events", policies.PolicyEvents(services)),
        ("/v1/policies/{name}/versions/{version:int(min=1)}", policies.PolicyVersion(services)),
        ("/v1/policies/{name}/versions/{version:int(min=1)}/activate",
         policies.PolicyActivate(services)),
        ("/v1/policies/{name}/diff", policy_review.PolicyDiff(services)),
        ("/v1/policies/impact", policy_review.PolicyImpact(services)),
        ("/v1/accounts", accounts.Accounts(services)),
        ("/v1/accounts/{account_id}", accounts.Account(services)),
        ("/v1/accounts/{account_id}/permissions", accounts.Permissions(services)),
        ("/v1/accounts/{account_id}/members", members.Members(services)),
        ("/v1/accounts/{account_id}/members/{user_id}", members.Member(services)),
        ("/v1/accounts/{account_id}/audit", audit.AuditLog(services)),
        ("/v1/accounts/{account_id}/invitations", invitations.Invitations(services)),
        ("/v1/accounts/{account_id}/invitations/{invitation_id}", invitations.Invitation(services)),
        ("/v1/accounts/{account_id}/invitations/{invitation_id}/resend",
         invitations.Resend(services)),
        ("/v1/invitations/accept", invitations.Accept(services)),
        ("/invitations/accept", AcceptPage(services)),
        ("/admin", AdminConsole()),
    ]


def build_services(config: Config, store: Store | None = None) -> Services:
    """Load policies (failing loudly), open storage, start the decision-log writer."""
    metrics = Metrics()
    if store is None:
        cache = AccountCache(Stamps(config.data_path / STAMPS_FILE)) \
            if config.uses_account_cache else None
        store = Store(config.effective_database_url, cache=cache, limits=database_limits(config))
    policy_set = PolicySet(source_for(config, store), config.default_policy)
    metrics.show_policies(policy_set.snapshot)
    metrics.policies_loaded(True)
    policy_set.on_swap.append(metrics.show_policies)
    policy_set.on_reload.append(metrics.policies_reloaded)
    metrics.scraped.append(OutboxBacklog(store.outbox))
    if config.policy_source == "database":
        connect = listen_connector(config.effective_database_url, database_limits(config))
        policy_set.follow(lambda on_change: PolicyFeed(connect, on_change))
    # Each destination's drop count at 0 from the start, so an alert sees the first drop.
    local_drops = metrics.dropped_logs.labels(config.decision_log) \
        if config.decision_log != "off" else None
    decisions = DecisionLog(config.decision_log, config.data_path,
                            on_drop=local_drops.inc if local_drops else None,
                            max_queued_bytes=config.decision_log_buffer_bytes,
                            shipper=shipper_for(config, metrics))
    # stopped by services' owner (server, tests)
    mailer = mailer_for(config, store, on_outcome=lambda o: metrics.mail.labels(o).inc()) \
        .start()
    return Services(config, policy_set, store, decisions, metrics, mailer)


def shipper_for(config: Config, metrics: Metrics) -> HttpShipper | None:
    if not config.decision_log_url:
        return None
    return HttpShipper(config.decision_log_url, config.decision_log_buffer_bytes,
                       on_drop=metrics.dropped_logs.labels("http").inc,
                       on_sent=metrics.shipped_logs.inc, on_failure=metrics.ship_failures.inc)


def create_app(config: Config, services: Services | None = None) -> falcon.App:
    services = services or build_services(config)
    services.verifier = Verifier(config)  # this app's identity settings; /readyz reads it
    json_handler = media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    names = RouteNames([path for path, _ in routes(services)])
    app = falcon.App(middleware=[
        RequestContextMiddleware(names, config.access_log == "on"),
        MetricsMiddleware(services.metrics, names),
        BodyLimitMiddleware(config.max_body_bytes),
        AuthMiddleware(services.verifier),
        ParamsMiddleware(),
    ])
    app.req_options.media_handlers.update({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers.update({falcon.MEDIA_JSON: json_handler})
    app.req_options.strip_url_path_trailing_slash = False
    problems.install(app)
    for path, resource in routes(services):
        app.add_route(path, resource)
    return app
