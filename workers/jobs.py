"""RQ job functions: ids in, reload, call a service, let errors propagate so RQ retries."""

from __future__ import annotations

import logging

import requests
from rq import get_current_job

from comms.models import App
from comms.services import call_delivery, callbacks, delivery

from .context import runtime

log = logging.getLogger(__name__)


def deliver(message_ids: list[str]) -> None:
    job = get_current_job()
    last_attempt = job is None or not job.retries_left
    delivery.deliver(runtime(), message_ids, last_attempt=last_attempt)


def deliver_calls(call_ids: list[str]) -> None:
    job = get_current_job()
    last_attempt = job is None or not job.retries_left
    call_delivery.deliver(runtime(), call_ids, last_attempt=last_attempt)


class CallbackRefused(Exception):  # noqa: N818
    """The app's callback URL answered non-2xx; RQ retries with backoff."""


def post_callback(app_id: str, url: str, payload: dict) -> None:
    rt = runtime()
    with rt.db.session() as session:
        app = session.get(App, app_id)
        if app is None:
            return  # the app was deleted; nobody to tell
        secret = app.webhook_secret
    body = callbacks.encode(payload)
    headers = {
        "Content-Type": "application/json",
        callbacks.SIGNATURE_HEADER: callbacks.sign(secret, body),
        "User-Agent": "comms-callbacks/1",
    }
    response = requests.post(
        url, data=body, headers=headers, timeout=rt.settings.webhook_timeout, allow_redirects=False
    )
    if not 200 <= response.status_code < 300:
        raise CallbackRefused(f"{url} answered {response.status_code}")
