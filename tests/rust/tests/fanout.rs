//! One message to many devices (`ServiceClient::send_many`) against a real hub: a result per
//! device, IoT Hub's throttling on the hub side, pacing and its retries on the client side,
//! and a run stopped midway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use c2d::{ErrorKind, FanOut, Message, RetryPolicy, Tier, Transport};
use c2d_hub::Throttling;
use c2d_scenarios::{recv, TestHub};

/// 300 devices: 10 of them unregistered and 5 with a full queue; every other one gets the
/// message, with its own id, and the summary counts each kind.
#[tokio::test(flavor = "multi_thread")]
async fn each_device_gets_its_own_result() {
    let h = TestHub::start(|c| c.limits.max_queue_depth = 2).await;
    let ids: Vec<String> = (0..300).map(|i| format!("dev{i:03}")).collect();
    for id in &ids[10..] {
        h.hub.create_device(id).await.unwrap();
    }
    let service = h.service().await;
    for id in &ids[10..15] {
        for _ in 0..2 {
            service.send(id, Message::new("filler")).await.unwrap();
        }
    }
    let mut message = Message::new("reboot");
    message.message_id = Some("cmd-1".into());
    let mut run = service
        .send_many(ids.clone(), message, FanOut::default().in_flight(16))
        .unwrap();
    let mut results = BTreeMap::new();
    while let Some((id, result)) = run.next().await {
        let outcome = match result {
            Ok(sent) => {
                assert_eq!(sent.message_id(), format!("cmd-1:{id}"));
                Ok(())
            }
            Err(e) => Err(e.kind()),
        };
        assert!(results.insert(id, outcome).is_none(), "a device twice");
    }
    assert_eq!(results.len(), 300);
    for (i, id) in ids.iter().enumerate() {
        let expected = match i {
            0..10 => Err(ErrorKind::DeviceNotFound),
            10..15 => Err(ErrorKind::QueueFull),
            _ => Ok(()),
        };
        assert_eq!(results[id], expected, "{id}");
        let depth = if i < 10 {
            0
        } else if i < 15 {
            2
        } else {
            1
        };
        assert_eq!(h.hub.queue_depth(id), depth, "{id}");
    }
    let summary = run.summary();
    assert_eq!(summary.sent, 285);
    assert_eq!(summary.failed_with(ErrorKind::DeviceNotFound), 10);
    assert_eq!(summary.failed_with(ErrorKind::QueueFull), 5);
    assert_eq!(summary.failed_total(), 15);
    assert_eq!((summary.retried, summary.throttled), (0, 0));
    assert!(summary.stopped.is_none() && !summary.cancelled);
    // real devices get theirs, one per transport
    for (id, t) in [
        ("dev100", Transport::Mqtt),
        ("dev200", Transport::Amqp),
        ("dev299", Transport::Https),
    ] {
        let cs = h.hub.device_connection_string(id).unwrap();
        let device = h.device(&cs, t).await.unwrap();
        let m = recv(&device).await;
        assert_eq!(m.body(), b"reboot");
        assert_eq!(
            m.message().message_id.as_ref().map(ToString::to_string),
            Some(format!("cmd-1:{id}"))
        );
        m.complete().await.unwrap();
        device.close().await;
    }
    service.close().await;
}

async fn throttled_hub(devices: usize, backlog: Duration) -> (TestHub, Vec<String>) {
    let h = TestHub::start(|_| {}).await;
    let ids: Vec<String> = (0..devices).map(|i| format!("t{i}")).collect();
    for id in &ids {
        h.hub.create_device(id).await.unwrap();
    }
    h.hub
        .set_throttling(Some(Throttling::new(Tier::S3, 1).unwrap().backlog(backlog)));
    (h, ids)
}

/// At the hub's own rate (S3 × 1, 83.3 sends a second), every device gets its message and
/// the hub refuses none, though its backlog is only 200 ms (16 sends).
#[tokio::test(flavor = "multi_thread")]
async fn paced_to_the_tier_the_hub_refuses_nothing() {
    let (h, ids) = throttled_hub(120, Duration::from_millis(200)).await;
    let service = h.service().await;
    let started = Instant::now();
    let mut run = service
        .send_many(
            ids.clone(),
            Message::new("x"),
            FanOut::default().rate(Tier::S3.units(1)),
        )
        .unwrap();
    while let Some((id, result)) = run.next().await {
        result.unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let elapsed = started.elapsed();
    let summary = run.summary();
    assert_eq!(summary.sent, 120);
    assert_eq!(summary.throttled, 0, "{summary:?}");
    assert_eq!(h.hub.refusals("throttled"), 0);
    // 119 intervals of 12 ms at least
    assert!(elapsed >= Duration::from_millis(1420), "{elapsed:?}");
    for id in &ids {
        assert_eq!(h.hub.queue_depth(id), 1);
    }
    service.close().await;
}

/// Unpaced, the same hub refuses sends as throttled; `send_many` retries them, slows down,
/// and every device still gets its message, no error surfacing.
#[tokio::test(flavor = "multi_thread")]
async fn unpaced_the_refusals_are_retried() {
    let (h, ids) = throttled_hub(150, Duration::from_millis(200)).await;
    let service = h.service().await;
    let policy = RetryPolicy::exponential(
        Duration::from_millis(50),
        Duration::from_secs(1),
        0.25,
        None,
    )
    .unwrap();
    let mut run = service
        .send_many(
            ids.clone(),
            Message::new("x"),
            FanOut::default().in_flight(64).retry(policy),
        )
        .unwrap();
    while let Some((id, result)) = run.next().await {
        result.unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let summary = run.summary();
    assert_eq!(summary.sent, 150);
    assert!(summary.throttled > 0, "{summary:?}");
    assert!(summary.retried >= summary.throttled, "{summary:?}");
    assert_eq!(h.hub.refusals("throttled"), summary.throttled);
    for id in &ids {
        assert_eq!(h.hub.queue_depth(id), 1, "{id}");
    }
    service.close().await;
}

/// `stop` midway: no send starts after it, those in flight are reported, and the summary
/// matches what the hub holds. Closing the client ends a run with `stopped: Closed`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_run_reports_what_it_sent() {
    let h = TestHub::start(|_| {}).await;
    let ids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
    for id in &ids {
        h.hub.create_device(id).await.unwrap();
    }
    let service = h.service().await;
    let mut run = service
        .send_many(
            ids.clone(),
            Message::new("x"),
            FanOut::default().rate(c2d::Rate::PerSecond(100.0)),
        )
        .unwrap();
    let stopper = run.stopper();
    let mut sent = Vec::new();
    while let Some((id, result)) = run.next().await {
        result.unwrap();
        sent.push(id);
        if sent.len() == 20 {
            stopper.stop();
        }
    }
    let summary = run.summary();
    assert!(summary.cancelled);
    assert_eq!(summary.sent as usize, sent.len());
    assert!(sent.len() < 40, "{} sent after the stop", sent.len());
    let queued: usize = ids.iter().map(|id| h.hub.queue_depth(id)).sum();
    assert_eq!(queued, sent.len());

    let mut run = service
        .send_many(
            ids.clone(),
            Message::new("y"),
            FanOut::default().rate(c2d::Rate::PerSecond(50.0)),
        )
        .unwrap();
    let mut n = 0;
    while let Some((_, result)) = run.next().await {
        n += 1;
        if n == 5 {
            service.close().await;
        }
        if let Err(e) = result {
            assert_eq!(e.kind(), ErrorKind::Closed);
        }
    }
    let summary = run.summary();
    assert_eq!(
        summary.stopped.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Closed)
    );
    assert!(n < 20, "{n} results after the close");
}

/// A run that cannot be paced is refused before it starts.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_fan_out_options_are_refused() {
    let h = TestHub::start(|_| {}).await;
    let service = h.service().await;
    let err = |fan: FanOut| {
        service
            .send_many(["a"], Message::new("x"), fan)
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        err(FanOut::default().in_flight(0)),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        err(FanOut::default().rate(c2d::Rate::PerSecond(-1.0))),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        err(FanOut::default().rate(Tier::F1.units(2))),
        ErrorKind::InvalidArgument
    );
    service.close().await;
}

/// The registry over REST, throttled as S1 (100 operations a minute, no backlog beyond one
/// turn): of three requests made together, one waits its turn and one is refused with 429,
/// which the client reports as `Throttled`.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_registry_answers_429() {
    let h = TestHub::start(|c| {
        c.throttling = Some(
            Throttling::new(Tier::S1, 1)
                .unwrap()
                .backlog(Duration::ZERO),
        )
    })
    .await;
    let service = h.service().await;
    let registry = service.registry();
    let (a, b, c) = tokio::join!(
        registry.create_device("r1"),
        registry.create_device("r2"),
        registry.create_device("r3")
    );
    let refused: Vec<_> = [a, b, c].into_iter().filter_map(Result::err).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].kind(), ErrorKind::Throttled);
    assert!(
        refused[0].message().contains("ThrottlingException"),
        "{}",
        refused[0]
    );
    assert_eq!(h.hub.refusals("throttled"), 1);
    service.close().await;
}

/// The registry read page by page with IoT Hub's device query: every id once, in order, the
/// last page without a continuation; a query the hub cannot answer is a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn the_registry_is_read_page_by_page() {
    let h = TestHub::start(|_| {}).await;
    let ids: Vec<String> = (0..250).map(|i| format!("q{i:03}")).collect();
    for id in &ids {
        h.hub.create_device(id).await.unwrap();
    }
    let service = h.service().await;
    let registry = service.registry();
    let (mut seen, mut pages, mut continuation) = (Vec::new(), 0, None::<String>);
    loop {
        let page = registry
            .device_ids_page(continuation.as_deref(), 100)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.device_ids);
        match page.continuation {
            Some(c) => continuation = Some(c),
            None => break,
        }
    }
    assert_eq!((pages, seen), (3, ids));
    let bad = registry
        .device_ids_page(Some("not a token of this hub"), 10)
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument, "{bad}");
    service.close().await;
}
