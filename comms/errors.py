"""Domain errors: each carries its HTTP status and the stable ``error`` id clients branch on."""

from __future__ import annotations

from collections.abc import Mapping


class CommsError(Exception):
    """Base of every error the API turns into the contract's error body."""

    status_code = 400
    error = "bad_request"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        retry_after: int | None = None,
    ):
        self.message = message or self.default_message
        super().__init__(self.message)
        self.errors = dict(errors or ({field: [self.message]} if field else {}))
        self.retry_after = retry_after


class ValidationFailed(CommsError):
    error = "validation_error"
    default_message = "Some fields are invalid."


class MalformedJson(CommsError):
    error = "malformed_json"
    default_message = "The request body is not valid JSON."


class InvalidPhoneNumber(CommsError):
    error = "invalid_phone_number"
    default_message = "The phone number is not a valid number."


class CountryNotAllowed(CommsError):
    status_code = 403
    error = "country_not_allowed"
    default_message = "Sending to this country is not allowed for this app."


class RecipientOptedOut(CommsError):
    error = "recipient_opted_out"
    default_message = "The recipient has opted out of messages from this app."


class TemplateNotFound(CommsError):
    error = "template_not_found"
    default_message = "No such template."


class TemplateNotApproved(CommsError):
    error = "template_not_approved"
    default_message = "The template is not approved for sending."


class TemplateMismatch(CommsError):
    error = "template_channel_mismatch"
    default_message = "The template is for another channel."


class MissingParams(CommsError):
    error = "missing_params"
    default_message = "Template parameters are missing."


class UnexpectedParams(CommsError):
    error = "unexpected_params"
    default_message = "Template parameters were given that the template does not use."


class FreeTextNotAllowed(CommsError):
    status_code = 403
    error = "free_text_not_allowed"
    default_message = "This app may only send approved templates."


class Unauthorized(CommsError):
    status_code = 401
    error = "unauthorized"
    default_message = "A valid API key is required: Authorization: Bearer <key>."


class Forbidden(CommsError):
    status_code = 403
    error = "forbidden"
    default_message = "This key may not do that."


class NotFound(CommsError):
    status_code = 404
    error = "not_found"
    default_message = "No such resource."


class Conflict(CommsError):
    status_code = 409
    error = "conflict"
    default_message = "The request conflicts with the resource's state."


class IdempotencyKeyReused(Conflict):
    error = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request body."


class IdempotencyInProgress(Conflict):
    error = "idempotency_in_progress"
    default_message = "A request with this Idempotency-Key is still being processed."


class InvalidState(Conflict):
    error = "invalid_state"


class NameTaken(Conflict):
    error = "name_taken"
    default_message = "A resource with this name already exists."


class RateLimited(CommsError):
    status_code = 429
    error = "rate_limited"
    default_message = "Too many requests; retry later."


class ServiceUnavailable(CommsError):
    status_code = 503
    error = "service_unavailable"
    default_message = "A backing service is unavailable; retry later."


class InvalidSignature(CommsError):
    status_code = 403
    error = "invalid_signature"
    default_message = "The request's carrier signature is missing or wrong."


class ChannelUnavailable(CommsError):
    error = "channel_unavailable"
    default_message = "This channel is not available in this deployment."


class TemplateKindMismatch(CommsError):
    error = "template_kind_mismatch"
    default_message = "The template is not of the kind this request needs."


class VerificationNotFound(NotFound):
    error = "verification_not_found"
    default_message = "No such verification."


class MaxCheckAttempts(RateLimited):
    error = "max_check_attempts"
    default_message = "Too many checks for this verification; start a new one."


class MaxSendAttempts(RateLimited):
    error = "max_send_attempts"
    default_message = "Too many codes were sent to this number; retry later."


class ResendTooSoon(RateLimited):
    error = "resend_too_soon"
    default_message = "A code was sent to this number moments ago; wait before asking for another."


class CountryLimitReached(RateLimited):
    error = "country_limit_reached"
    default_message = "Today's cap of codes to this country is reached; retry later."


class CountryPaused(CommsError):
    status_code = 403
    error = "country_paused"
    default_message = "Codes to this country are paused for this app (fraud guard)."


class PoolExhausted(Conflict):
    error = "pool_exhausted"
    default_message = "No proxy number in the pool is free for both parties; add numbers or release bindings."


class NumberExists(Conflict):
    error = "number_exists"
    default_message = "This proxy number is already registered."


class NumberInUse(Conflict):
    error = "number_in_use"
    default_message = "The proxy number still carries active bindings; release them first (or ?release=true)."


class BindingNotFound(NotFound):
    error = "binding_not_found"
    default_message = "No such binding."


class BindingNotActive(Conflict):
    error = "binding_not_active"
    default_message = "The binding was released or has expired; create a new one."


class PartyConflict(Conflict):
    error = "party_conflict"
    default_message = "That party already has an active binding on this proxy number."


class UnknownCarrier(CommsError):
    error = "unknown_carrier"
    default_message = "No carrier of that name is configured."


class SameParty(CommsError):
    error = "same_party"
    default_message = "party_a and party_b must be different numbers."


class MaxCallAttempts(RateLimited):
    error = "max_call_attempts"
    default_message = "Too many calls to this number; retry later."


class TextTooLong(CommsError):
    error = "text_too_long"
    default_message = "The text to read aloud is too long."
