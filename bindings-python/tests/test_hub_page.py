"""The local hub's live page and metrics, as a Python user's tests would reach them: the
address from ``LocalHub.ui_url``, 401 without its token, and ``/metrics`` parsed by the
Prometheus project's own parser, its counters matching what the test did."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, Optional, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

import c2d
from c2d.testing import LocalHub

from conftest import WAIT, fast_retry


def get(hub: LocalHub, url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    context = ssl.create_default_context(cadata=hub.ca_pem)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=WAIT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_page_and_metrics_need_the_token(hub: LocalHub) -> None:
    base, token = hub.ui_url.split("/ui/?token=")
    assert base == f"https://localhost:{hub.https_port}"
    assert len(token) == 48
    assert get(hub, f"{base}/ui/")[0] == 401
    assert get(hub, f"{base}/ui/?token=x{token}")[0] == 401
    assert get(hub, f"{base}/ui/events")[0] == 401
    assert get(hub, f"{base}/metrics")[0] == 401
    assert get(hub, f"{base}/metrics", {"Authorization": "Bearer nope"})[0] == 401
    # the address itself opens the page (urllib follows the redirect with the cookie it set)
    context = ssl.create_default_context(cadata=hub.ca_pem)
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor()
    )
    with opener.open(hub.ui_url, timeout=WAIT) as resp:
        assert resp.status == 200
        assert resp.url == f"{base}/ui/"
        assert "<title>c2d hub</title>" in resp.read().decode()


def test_metrics_count_what_happened(hub: LocalHub) -> None:
    base, token = hub.ui_url.split("/ui/?token=")
    with c2d.ServiceClient.connect(hub.owner_connection_string, **hub.service_options()) as svc:
        cs = svc.registry.create_device("dev1").connection_string
        assert cs is not None
        svc.registry.create_device("dev2")
        with c2d.DeviceClient.connect(
            cs, transport=c2d.Transport.AMQP, retry=fast_retry(), **hub.device_options()
        ) as device:
            sent = [svc.send("dev1", c2d.Message(f"m{i}", ack=c2d.Ack.FULL)) for i in range(3)]
            for settle in ("complete", "complete", "reject"):
                m = device.receive(timeout=WAIT)
                assert m is not None
                getattr(m, settle)()
            outcomes = [x.outcome(timeout=WAIT).status for x in sent]
            assert outcomes == [c2d.FeedbackStatus.SUCCESS] * 2 + [c2d.FeedbackStatus.REJECTED]

            status, text = get(hub, f"{base}/metrics", {"Authorization": f"Bearer {token}"})
            assert status == 200
            s = samples(text)

            def event(name: str) -> float:
                return s[("c2d_hub_messages_total", (("event", name),))]

            assert event("accepted") == 3
            assert event("delivered") == 3
            assert event("completed") == 2
            assert event("rejected") == 1
            assert event("dead_lettered") == 1
            assert event("abandoned") == 0
            assert s[("c2d_hub_feedback_records_total", (("status", "Success"),))] == 2
            assert s[("c2d_hub_feedback_records_total", (("status", "Rejected"),))] == 1
            assert s[("c2d_hub_devices_registered", ())] == 2
            assert s[("c2d_hub_devices_connected", (("transport", "amqp"),))] == 1
            assert s[("c2d_hub_devices_connected", (("transport", "mqtt"),))] == 0
            assert s[("c2d_hub_queued_messages", ())] == 0
            # every commit was synced (durability fsync) and timed
            commits = s[("c2d_hub_store_commit_seconds_count", ())]
            assert commits >= 3
            assert s[("c2d_hub_store_fsyncs_total", ())] == commits

        # a SAS token of a policy with RegistryRead reads them too; the service policy's not
        registry_read = svc_token(hub, "iothubowner")
        assert get(hub, f"{base}/metrics", {"Authorization": registry_read})[0] == 200


def svc_token(hub: LocalHub, policy: str) -> str:
    """A SAS token for a policy of the hub, made from its connection string as IoT Hub's
    documentation describes."""
    cs = hub.owner_connection_string if policy == "iothubowner" else hub.service_connection_string
    parts = dict(p.split("=", 1) for p in cs.split(";"))
    sr = urllib.parse.quote(parts["HostName"], safe="")
    se = int(time.time()) + 600
    mac = hmac.new(base64.b64decode(parts["SharedAccessKey"]), f"{sr}\n{se}".encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={se}&skn={parts['SharedAccessKeyName']}"


@pytest.mark.parametrize("policy,status", [("iothubowner", 200), ("service", 401)])
def test_metrics_with_a_sas_token(hub: LocalHub, policy: str, status: int) -> None:
    base, _ = hub.ui_url.split("/ui/?token=")
    assert get(hub, f"{base}/metrics", {"Authorization": svc_token(hub, policy)})[0] == status
