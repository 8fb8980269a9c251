"""The webhook forwarder's pure parts: the signature a receiver checks (and its replay
window), what each HTTP answer means, Retry-After, the body and id of a change (stable
across repeats), the filters, the settings' refusals, and the CLI's refusal of a secret
on the command line."""

from __future__ import annotations

import hashlib
import hmac
import json
from types import SimpleNamespace
from typing import Any

import pytest

from common.alert_view import COLUMNS, AlertFilter
from common.kafka import deadletter
from common.kafka.settings import KafkaSettings
from common.settings import Secret
from printfleet.cli import build_parser
from schemas import SchemaRegistry
from schemas.samples import sample_record
from sinks.deadletter import DeadLetter
from sinks.webhook import signing
from sinks.webhook.delivery import Answer, classify, retry_after
from sinks.webhook.errors import ReceiverRefused, ReceiverUnavailable
from sinks.webhook.payload import ForwardFilter, change, decode
from sinks.webhook.settings import WebhookSettings

SECRET = b"shared"
BODY = b'{"id":"r-1"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(SECRET, 1_700_000_000, BODY) == "sha256=" + expected


def test_headers_carry_id_event_timestamp_and_signature() -> None:
    headers = signing.headers(SECRET, "r-1", "alert.raised", 1_700_000_000, BODY)
    assert headers[signing.ID_HEADER] == "r-1" and headers[signing.EVENT_HEADER] == "alert.raised"
    assert headers[signing.TIMESTAMP_HEADER] == "1700000000"
    assert headers[signing.SIGNATURE_HEADER] == signing.signature(SECRET, 1_700_000_000, BODY)
    assert headers["Content-Type"] == "application/json"


def test_verify_accepts_a_fresh_signature_and_refuses_a_changed_body_a_wrong_secret_or_a_replay() -> None:
    headers = signing.headers(SECRET, "r-1", "alert.raised", 1_700_000_000, BODY)
    assert signing.verify(SECRET, headers, BODY, now=1_700_000_100) is None
    assert signing.verify(SECRET, headers, BODY + b" ", now=1_700_000_100) == "signature does not match the body"
    assert signing.verify(b"other", headers, BODY, now=1_700_000_100) == "signature does not match the body"
    replayed = signing.verify(SECRET, headers, BODY, now=1_700_000_000 + signing.REPLAY_WINDOW_S + 1)
    assert replayed is not None and "replay" in replayed
    assert signing.verify(SECRET, {**headers, signing.TIMESTAMP_HEADER: "soon"}, BODY, now=1_700_000_000) is not None
    # A later timestamp with the old signature: the timestamp is signed too.
    moved = {**headers, signing.TIMESTAMP_HEADER: "1700000200"}
    assert signing.verify(SECRET, moved, BODY, now=1_700_000_200) == "signature does not match the body"


@pytest.mark.parametrize(("status", "answer"), [
    (200, Answer.DELIVERED), (201, Answer.DELIVERED), (204, Answer.DELIVERED), (299, Answer.DELIVERED),
    (408, Answer.RETRY), (425, Answer.RETRY), (429, Answer.RETRY), (500, Answer.RETRY), (502, Answer.RETRY),
    (503, Answer.RETRY), (599, Answer.RETRY),
    (400, Answer.REFUSED), (401, Answer.REFUSED), (403, Answer.REFUSED), (404, Answer.REFUSED),
    (410, Answer.REFUSED), (422, Answer.REFUSED), (301, Answer.REFUSED), (307, Answer.REFUSED), (100, Answer.REFUSED),
])
def test_classify_each_answer(status: int, answer: Answer) -> None:
    assert classify(status) is answer


def test_errors_say_whether_a_retry_can_help() -> None:
    assert ReceiverUnavailable("x", retry_after=3.0).retriable and ReceiverUnavailable("x").retry_after is None
    refused = ReceiverRefused("x", 422, "no such customer")
    assert not refused.retriable and (refused.status, refused.answer) == (422, "no such customer")


def test_retry_after_takes_seconds_capped_and_ignores_dates() -> None:
    assert retry_after("7", 60.0) == 7.0
    assert retry_after(" 120 ", 60.0) == 60.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60.0) is None
    assert retry_after(None, 60.0) is None and retry_after("-1", 60.0) is None


def _alert(**fields: Any) -> dict[str, Any]:
    return {**sample_record("alert", seed=3), "record_id": "rec-1", "lifecycle": "RAISED", "severity": "ERROR",
            "rule_id": "system-event", "site_id": "site-a", **fields}


def test_change_body_is_the_alert_view_under_its_id_and_event_and_the_same_on_every_repeat() -> None:
    alert = _alert(lifecycle="CLEARED")
    made = change(alert)
    assert made.delivery_id == "rec-1" and made.event == "alert.cleared"
    body = json.loads(made.body)
    assert body["id"] == "rec-1" and body["event"] == "alert.cleared"
    assert list(body["alert"]) == list(COLUMNS) and body["alert"]["lifecycle"] == "CLEARED"
    assert change(dict(alert)) == made


def test_decode_names_what_is_not_an_alert() -> None:
    registry = SchemaRegistry.load_default()
    assert decode(registry, registry.encode("alert", _alert()))["record_id"] == "rec-1"  # type: ignore[index]
    assert decode(registry, None) == "no value (a tombstone)"
    assert "not an alert" in str(decode(registry, registry.encode("heartbeat", sample_record("heartbeat", seed=1))))
    assert "Error" in str(decode(registry, b"garbage"))


def test_filters_keep_any_listed_rule_and_exact_severity_and_the_site() -> None:
    wanted = ForwardFilter(frozenset({"system-event", "printhead-life"}), frozenset({"ERROR", "CRITICAL"}),
                           AlertFilter(site="site-a"))
    assert wanted.matches(_alert())
    assert wanted.matches(_alert(rule_id="printhead-life", severity="CRITICAL"))
    assert not wanted.matches(_alert(severity="WARNING"))
    assert not wanted.matches(_alert(rule_id="printer-offline"))
    assert not wanted.matches(_alert(site_id="site-b"))
    assert ForwardFilter().matches(_alert(severity="INFO", rule_id="anything", site_id="x"))
    with pytest.raises(ValueError, match="unknown severity SEVERE"):
        ForwardFilter(severities=frozenset({"SEVERE"}))


def _settings(**fields: Any) -> WebhookSettings:
    base: dict[str, Any] = {"kafka": KafkaSettings("127.0.0.1:9092"), "url": "https://hooks.example/alerts",
                            "secret": Secret("s")}
    return WebhookSettings(**{**base, **fields})


def test_settings_refuse_a_missing_secret_a_bad_url_and_bad_numbers() -> None:
    assert _settings().group_id == "printfleet-alerts-forward"
    assert "hunter2" not in repr(_settings(secret=Secret("hunter2")))
    with pytest.raises(ValueError, match="no webhook secret"):
        _settings(secret=Secret(""))
    with pytest.raises(ValueError, match="http:// or https://"):
        _settings(url="hooks.example/alerts")
    with pytest.raises(ValueError, match="refused_attempts"):
        _settings(refused_attempts=0)
    with pytest.raises(ValueError, match="retry_max_s"):
        _settings(retry_initial_s=5.0, retry_max_s=1.0)


def test_cli_refuses_a_secret_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["alerts", "forward", "--webhook", "http://x", "--secret", "hunter2"])
    err = capsys.readouterr().err
    assert "PRINTFLEET_WEBHOOK_SECRET" in err and "hunter2" not in err


def test_a_refused_change_is_dead_lettered_as_the_webhooks_with_its_origin() -> None:
    message = SimpleNamespace(offset=41, timestamp=1_700_000_000_000, key=b"dev", value=b"v", headers=())
    letter = DeadLetter("alerts", 3, message, "the receiver refused it 3 times, last with 422: 'no'",
                        "ReceiverRefused", "deliver", component="webhook")
    read = deadletter.read(letter.headers())
    assert (read["component"], read["stage"], read["error"]) == ("webhook", "deliver", "ReceiverRefused")
    assert (read["origin.topic"], read["origin.partition"], read["origin.offset"]) == ("alerts", "3", "41")
    assert DeadLetter("alerts", 3, message, "r", "E", "decode").headers() != letter.headers()
    assert deadletter.read(DeadLetter("alerts", 3, message, "r", "E", "decode").headers())["component"] == "sink"
