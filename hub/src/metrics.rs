//! The hub's metrics in the Prometheus text format (`GET /metrics` on the HTTPS port, see
//! docs/hub.md): registry and connections, queue depths, message events, feedback records,
//! the store's commits and the refusals.
//!
//! Gauges and the message counters are read from the hub's state at each scrape; the
//! store's histogram and the refusal counter are kept as they happen.

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::context::HubContext;
use crate::state::stats::FEEDBACK_STATUSES;

/// At most this many devices get a queue-depth series of their own (the deepest queues);
/// `c2d_hub_queue_depth_other_devices` sums the rest, so a hub with many devices does not
/// make as many series.
pub const MAX_DEPTH_SERIES: usize = 100;

/// The content type of the metrics text (Prometheus's text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The counter of refused connections and requests, by reason.
pub(crate) fn refused_counter() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new(
            "c2d_hub_refused_total",
            "Connections and requests the hub refused, by reason",
        ),
        &["reason"],
    )
    .expect("valid counter options")
}

fn gauge_vec(name: &str, help: &str, label: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &[label]).expect("valid gauge options")
}

fn gauge(name: &str, help: &str, value: usize) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid gauge options");
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// The hub's metrics now, in the Prometheus text format.
pub(crate) fn render(ctx: &HubContext) -> String {
    let registry = Registry::new();
    let register = |c: Box<dyn prometheus::core::Collector>| {
        registry.register(c).expect("every metric has its own name");
    };

    let (registered, mut depths, counters, feedback) = ctx.store.read(|s| {
        let depths: Vec<(String, usize)> = s
            .queues
            .iter()
            .map(|(id, q)| (id.clone(), q.len()))
            .collect();
        (
            s.registry.devices().count(),
            depths,
            s.stats.counters,
            s.stats.feedback_records,
        )
    });
    register(Box::new(gauge(
        "c2d_hub_devices_registered",
        "Devices in the registry",
        registered,
    )));
    let connected = gauge_vec(
        "c2d_hub_devices_connected",
        "Devices connected now (an MQTT session or an AMQP receiving link), by transport",
        "transport",
    );
    for t in [
        c2d::Transport::Mqtt,
        c2d::Transport::MqttWs,
        c2d::Transport::Amqp,
        c2d::Transport::AmqpWs,
    ] {
        connected.with_label_values(&[t.as_str()]).set(0);
    }
    for p in ctx.sessions.presence().values() {
        connected.with_label_values(&[p.transport.as_str()]).inc();
    }
    register(Box::new(connected));

    register(Box::new(gauge(
        "c2d_hub_queued_messages",
        "Messages in every device's queue, enqueued or locked",
        depths.iter().map(|(_, n)| n).sum(),
    )));
    depths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let per_device = gauge_vec(
        "c2d_hub_queue_depth",
        "Messages in a device's queue (the deepest queues only; the rest are summed in c2d_hub_queue_depth_other_devices)",
        "device",
    );
    for (id, n) in depths.iter().take(MAX_DEPTH_SERIES) {
        per_device.with_label_values(&[id]).set(*n as i64);
    }
    register(Box::new(per_device));
    register(Box::new(gauge(
        "c2d_hub_queue_depth_other_devices",
        "Messages queued for the devices that have no c2d_hub_queue_depth series",
        depths.iter().skip(MAX_DEPTH_SERIES).map(|(_, n)| n).sum(),
    )));

    let events = IntCounterVec::new(
        Opts::new(
            "c2d_hub_messages_total",
            "C2D message events since the hub started: accepted, delivered, completed, rejected, abandoned, expired, dead_lettered (rejected, expired or past the max delivery count), purged",
        ),
        &["event"],
    )
    .expect("valid counter options");
    for (event, n) in [
        ("accepted", counters.accepted),
        ("delivered", counters.delivered),
        ("completed", counters.completed),
        ("rejected", counters.rejected),
        ("abandoned", counters.abandoned),
        ("expired", counters.expired),
        ("dead_lettered", counters.dead_lettered),
        ("purged", counters.purged),
    ] {
        events.with_label_values(&[event]).inc_by(n);
    }
    register(Box::new(events));

    let records = IntCounterVec::new(
        Opts::new(
            "c2d_hub_feedback_records_total",
            "Feedback records the hub produced since it started, by status",
        ),
        &["status"],
    )
    .expect("valid counter options");
    for (status, n) in FEEDBACK_STATUSES.iter().zip(feedback) {
        records.with_label_values(&[status.as_str()]).inc_by(n);
    }
    register(Box::new(records));

    let store = ctx.store.metrics();
    register(Box::new(store.commit_seconds.clone()));
    register(Box::new(store.fsyncs.clone()));
    register(Box::new(ctx.refused.clone()));
    register(Box::new(ctx.faults_applied.clone()));
    let acks_lost = prometheus::IntCounter::new(
        "c2d_hub_acks_lost_total",
        "Device acknowledgements the hub lost because a fault asked it to (lose-acks)",
    )
    .expect("valid counter options");
    acks_lost.inc_by(ctx.store.read(|s| s.acks_lost));
    register(Box::new(acks_lost));
    register(Box::new(gauge(
        "c2d_hub_throttling_c2d_sends_per_minute",
        "The C2D sends a minute the hub's IoT Hub throttling allows (0: not throttling)",
        ctx.throttle
            .get()
            .map_or(0, |t| (t.tier.c2d_sends_per_minute() * t.units) as usize),
    )));

    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .expect("the text encoder writes to memory");
    String::from_utf8(text).expect("the text format is UTF-8")
}
