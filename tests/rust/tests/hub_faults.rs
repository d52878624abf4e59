//! Faults on demand (`LocalHub::faults`) as real clients see them, and duplicate suppression
//! on the device: a dropped connection and the reconnect after it, a lost acknowledgement
//! that brings the message again (handed over once with suppression, across a restart of the
//! client with a duplicates file), refused sends and their retries, delayed deliveries and a
//! stalled store.

use std::time::{Duration, Instant};

use c2d::{
    ConnectionStatus, DeviceClient, ErrorKind, Message, RetryPolicy, ServiceClient, Transport,
};
use c2d_hub::SendRefusal;
use c2d_scenarios::{recv, TestHub, WAIT};

fn with_id(id: &str, body: &str) -> Message {
    let mut m = Message::new(body.to_string());
    m.message_id = Some(id.into());
    m
}

async fn service_with(h: &TestHub, retry: RetryPolicy) -> ServiceClient {
    ServiceClient::builder(&h.hub.owner_connection_string())
        .unwrap()
        .trusted_ca_pem(h.hub.ca_pem())
        .port(h.hub.amqp_port())
        .https_port(h.hub.https_port())
        .retry(retry)
        .connect()
        .await
        .unwrap()
}

async fn device_with(
    h: &TestHub,
    cs: &str,
    t: Transport,
    configure: impl FnOnce(c2d::DeviceClientBuilder) -> c2d::DeviceClientBuilder,
) -> DeviceClient {
    let b = DeviceClient::builder(cs)
        .unwrap()
        .transport(t)
        .trusted_ca_pem(h.hub.ca_pem())
        .port(h.port(t))
        .retry(RetryPolicy::fixed(Duration::from_millis(100)))
        .poll_interval(Duration::from_millis(50));
    configure(b).connect().await.unwrap()
}

/// Waits until `pred` holds, within [`WAIT`].
async fn eventually(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_is_seen_and_the_device_reconnects_by_itself() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    for (i, t) in [
        Transport::Mqtt,
        Transport::MqttWs,
        Transport::Amqp,
        Transport::AmqpWs,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("drop-{t}");
        let cs = h.hub.create_sas_device(&id).await.unwrap();
        let device = h.device(&cs, t).await.unwrap();
        let mut status = device.status();
        let polite = i % 2 == 1;
        let faults = h.hub.faults();
        let dropped = if polite {
            faults.close_connections(&id)
        } else {
            faults.drop_connections(&id)
        };
        assert_eq!(dropped, 1, "{t}");
        let mut saw = Vec::new();
        tokio::time::timeout(WAIT, async {
            loop {
                let s = status.recv().await.unwrap();
                saw.push(s.clone());
                if s == ConnectionStatus::Connected
                    && saw
                        .iter()
                        .any(|s| matches!(s, ConnectionStatus::Disconnected(_)))
                {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{t}: no disconnect and reconnect: {saw:?}"));
        // and it receives again
        service
            .send(&id, Message::new(format!("after the drop over {t}")))
            .await
            .unwrap();
        let m = recv(&device).await;
        assert_eq!(m.body(), format!("after the drop over {t}").as_bytes());
        m.complete().await.unwrap();
        device.close().await;
    }
    // HTTPS devices hold no connection to drop
    assert!(h.hub.faults().drop_transport(Transport::Https).is_err());
    service.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_ack_brings_the_message_again_and_suppression_hands_it_over_once() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    for t in [Transport::Mqtt, Transport::Amqp, Transport::Https] {
        for suppress in [false, true] {
            let id = format!("lost-{t}-{suppress}");
            let cs = h.hub.create_sas_device(&id).await.unwrap();
            let device = device_with(&h, &cs, t, |b| b.suppress_duplicates(suppress)).await;
            service.send(&id, with_id("m1", "first")).await.unwrap();
            let m = recv(&device).await;
            assert_eq!(m.body(), b"first");
            let lost = h.hub.faults().acks_lost();
            h.hub.faults().lose_acks(&id, 1).unwrap();
            m.complete().await.unwrap();
            // the hub never got it: the message stays, locked, until its lock ends
            eventually("the lost ack counted", || {
                h.hub.faults().acks_lost() == lost + 1
            })
            .await;
            assert_eq!(h.hub.queue_depth(&id), 1, "{t}");
            assert!(h.hub.faults().active().is_empty(), "one ack, used up");
            assert!(h.hub.faults().expire_locks() >= 1);
            service.send(&id, with_id("m2", "second")).await.unwrap();
            let next = recv(&device).await;
            if suppress {
                // settled again without being handed over: the next one is m2
                assert_eq!(next.body(), b"second", "{t}");
                next.complete().await.unwrap();
                eventually("both completed", || h.hub.queue_depth(&id) == 0).await;
                assert_eq!(device.duplicates_suppressed(), 1, "{t}");
            } else {
                assert_eq!(next.body(), b"first", "{t}: handed over again");
                next.complete().await.unwrap();
                let m2 = recv(&device).await;
                assert_eq!(m2.body(), b"second");
                m2.complete().await.unwrap();
                assert_eq!(device.duplicates_suppressed(), 0);
            }
            device.close().await;
        }
    }
    service.close().await;
}

/// The window in a file outlives the client: a message completed by one process whose
/// acknowledgement was lost is not handed to the next one.
#[tokio::test(flavor = "multi_thread")]
async fn the_duplicates_file_keeps_the_window_across_clients() {
    let h = TestHub::start(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.dups");
    let service = h.service().await;
    let cs = h.hub.create_sas_device("dev").await.unwrap();
    let first = device_with(&h, &cs, Transport::Amqp, |b| b.duplicates_file(&file)).await;
    service
        .send("dev", with_id("once", "handled"))
        .await
        .unwrap();
    let m = recv(&first).await;
    h.hub.faults().lose_acks("dev", 1).unwrap();
    m.complete().await.unwrap();
    eventually("the lost ack counted", || h.hub.faults().acks_lost() == 1).await;
    first.close().await;
    assert_eq!(h.hub.queue_depth("dev"), 1);
    let second = device_with(&h, &cs, Transport::Mqtt, |b| b.duplicates_file(&file)).await;
    eventually("settled by the second client", || {
        h.hub.queue_depth("dev") == 0
    })
    .await;
    assert_eq!(second.duplicates_suppressed(), 1);
    // a message without an id is always handed over
    service.send("dev", Message::new("no id")).await.unwrap();
    assert_eq!(recv(&second).await.body(), b"no id");
    second.close().await;
    service.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_sends_surface_as_their_errors_and_transient_ones_are_retried() {
    let h = TestHub::start(|_| {}).await;
    h.hub.create_device("dev").await.unwrap();
    let once = service_with(&h, RetryPolicy::None).await;
    for (error, kind) in [
        (SendRefusal::Throttled, ErrorKind::Throttled),
        (SendRefusal::Busy, ErrorKind::Unavailable),
        (SendRefusal::Quota, ErrorKind::QuotaExceeded),
    ] {
        h.hub.faults().refuse_sends(error, 1).unwrap();
        let e = once.send("dev", Message::new("x")).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{error:?}: {e}");
        assert!(e.to_string().contains(&error.code().to_string()), "{e}");
        // the next one goes through
        once.send("dev", Message::new("y")).await.unwrap();
    }
    assert_eq!(h.hub.refusals("fault"), 3);
    let retrying = service_with(&h, RetryPolicy::fixed(Duration::from_millis(50))).await;
    h.hub.faults().refuse_sends(SendRefusal::Busy, 2).unwrap();
    retrying.send("dev", Message::new("z")).await.unwrap();
    assert_eq!(h.hub.refusals("fault"), 5);
    h.hub
        .faults()
        .refuse_sends_for(SendRefusal::Throttled, Duration::from_secs(60))
        .unwrap();
    assert!(once.send("dev", Message::new("w")).await.is_err());
    h.hub.faults().clear();
    once.send("dev", Message::new("w")).await.unwrap();
    assert_eq!(h.hub.queue_depth("dev"), 5);
    once.close().await;
    retrying.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delay_holds_each_delivery_and_a_stalled_store_holds_each_send() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    let delay = Duration::from_millis(400);
    for t in [Transport::Mqtt, Transport::Amqp, Transport::Https] {
        let id = format!("slow-{t}");
        let cs = h.hub.create_sas_device(&id).await.unwrap();
        let device = h.device(&cs, t).await.unwrap();
        h.hub.faults().delay_deliveries(&id, delay).unwrap();
        let sent = Instant::now();
        service.send(&id, Message::new("late")).await.unwrap();
        let m = recv(&device).await;
        assert!(sent.elapsed() >= delay, "{t}: {:?}", sent.elapsed());
        m.complete().await.unwrap();
        device.close().await;
    }
    h.hub.faults().clear();
    let stall = Duration::from_millis(500);
    h.hub.faults().stall_store(stall).unwrap();
    assert!(h
        .hub
        .faults()
        .stall_store(Duration::from_secs(25 * 3600))
        .is_err());
    let begun = Instant::now();
    service
        .send("slow-mqtt", Message::new("slow disk"))
        .await
        .unwrap();
    assert!(
        begun.elapsed() >= stall - Duration::from_millis(50),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!(h.hub.queue_depth("slow-mqtt"), 1, "nothing lost");
    service.close().await;
}

/// A message its device completes before the hub has written it needs no disk: with the
/// store stalled (a disk that does not answer), a send to a connected device is answered by
/// the device's completion, over every transport; nothing is lost or left queued.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_is_answered_by_its_completion_while_the_disk_is_stalled() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    for t in [Transport::Mqtt, Transport::Amqp, Transport::Https] {
        let id = format!("quick-{t}");
        let cs = h.hub.create_sas_device(&id).await.unwrap();
        let device = h.device(&cs, t).await.unwrap();
        h.hub.faults().stall_store(Duration::from_secs(60)).unwrap();
        let begun = Instant::now();
        let sending = tokio::spawn({
            let (service, id) = (service.clone(), id.clone());
            async move { service.send(&id, Message::new("no disk needed")).await }
        });
        let m = recv(&device).await;
        assert_eq!(m.body(), b"no disk needed");
        // an AMQP or HTTPS device's completion is itself answered once committed: it waits
        // for the stall, the send does not
        let completing = tokio::spawn(async move { m.complete().await });
        tokio::time::timeout(WAIT, sending)
            .await
            .unwrap_or_else(|_| panic!("{t}: the send waited for the stalled disk"))
            .unwrap()
            .unwrap();
        assert!(begun.elapsed() < Duration::from_secs(60));
        assert_eq!(h.hub.queue_depth(&id), 0, "{t}");
        h.hub.faults().clear();
        completing.await.unwrap().unwrap();
        device.close().await;
    }
    service.close().await;
}

/// A settlement the hub does not answer in time (its store stalled past the client's
/// timeout) leaves the HTTPS device able to receive: the message it held no longer counts
/// against its in-flight limit (once, 16 such settles stopped its polling for good).
#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_https_settle_does_not_stop_the_device() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    let cs = h.hub.create_sas_device("dev").await.unwrap();
    let device = device_with(&h, &cs, Transport::Https, |b| {
        b.in_flight(1).timeout(Duration::from_millis(500))
    })
    .await;
    service.send("dev", Message::new("first")).await.unwrap();
    let m = recv(&device).await;
    h.hub.faults().stall_store(Duration::from_secs(2)).unwrap();
    let e = m.complete().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    h.hub.faults().clear();
    // the first comes again when its lock ends (the stalled completion may also land)
    service.send("dev", Message::new("second")).await.unwrap();
    let next = recv(&device).await;
    assert!(
        [&b"first"[..], b"second"].contains(&next.body()),
        "{:?}",
        next.body()
    );
    next.complete().await.unwrap();
    device.close().await;
    service.close().await;
}
