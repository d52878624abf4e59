//! A raw AMQP 1.0 client: frames written and read one by one, so that tests can check what
//! the hub answers where client libraries hide it (settle mode *second*, lock loss).
#![allow(dead_code)]

use bytes::Buf;
use fe2o3_amqp::frames::sasl;
use fe2o3_amqp::types::definitions::{Handle, ReceiverSettleMode, Role, SenderSettleMode};
use fe2o3_amqp::types::messaging::{Source, Target};
use fe2o3_amqp::types::performatives::{
    Attach, Begin, ChannelMax, Disposition, Flow, MaxFrameSize, Open, Performative,
};
use fe2o3_amqp::types::primitives::Binary;
use fe2o3_amqp::types::sasl::SaslInit;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{tls, TestHub, WAIT};

pub struct RawClient {
    stream: TlsStream<TcpStream>,
}

fn frame(frame_type: u8, channel: u16, body: &impl Serialize) -> Vec<u8> {
    let encoded = serde_amqp::to_vec(body).unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(&((8 + encoded.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[2, frame_type]);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&encoded);
    out
}

impl RawClient {
    /// TLS, SASL PLAIN with `username` and `token`, then open and begin channel 0.
    pub async fn connect(th: &TestHub, username: &str, token: &str) -> RawClient {
        let mut stream = tls(&th.hub, th.hub.amqp_port()).await;
        stream.write_all(b"AMQP\x03\x01\x00\x00").await.unwrap();
        let mut header = [0u8; 8];
        stream.read_exact(&mut header).await.unwrap();
        assert_eq!(&header, b"AMQP\x03\x01\x00\x00");
        let mut c = RawClient { stream };
        let _mechanisms = c.read_raw().await;
        let mut response = vec![0u8];
        response.extend_from_slice(username.as_bytes());
        response.push(0);
        response.extend_from_slice(token.as_bytes());
        let init = sasl::Frame::Init(SaslInit {
            mechanism: "PLAIN".into(),
            initial_response: Some(Binary::from(response)),
            hostname: None,
        });
        c.stream.write_all(&frame(1, 0, &init)).await.unwrap();
        let outcome = c.read_raw().await;
        let outcome: sasl::Frame = serde_amqp::from_slice(&outcome.1).unwrap();
        assert!(
            format!("{outcome:?}").contains("Ok"),
            "SASL outcome {outcome:?}"
        );
        c.stream.write_all(b"AMQP\x00\x01\x00\x00").await.unwrap();
        c.stream.read_exact(&mut header).await.unwrap();
        assert_eq!(&header, b"AMQP\x00\x01\x00\x00");
        c.send(
            0,
            &Open {
                container_id: "raw".into(),
                hostname: Some("localhost".into()),
                max_frame_size: MaxFrameSize(65536),
                channel_max: ChannelMax(10),
                idle_time_out: None,
                outgoing_locales: None,
                incoming_locales: None,
                offered_capabilities: None,
                desired_capabilities: None,
                properties: None,
            },
        )
        .await;
        assert!(matches!(c.recv().await, Performative::Open(_)));
        c.send(
            0,
            &Begin {
                remote_channel: None,
                next_outgoing_id: 0,
                incoming_window: 1000,
                outgoing_window: 1000,
                handle_max: Handle(100),
                offered_capabilities: None,
                desired_capabilities: None,
                properties: None,
            },
        )
        .await;
        assert!(matches!(c.recv().await, Performative::Begin(_)));
        c
    }

    pub async fn send(&mut self, channel: u16, p: &impl Serialize) {
        self.stream.write_all(&frame(0, channel, p)).await.unwrap();
    }

    async fn read_raw(&mut self) -> (u8, Vec<u8>) {
        let mut size = [0u8; 4];
        tokio::time::timeout(WAIT, self.stream.read_exact(&mut size))
            .await
            .expect("no frame within 10 s")
            .unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(size) as usize - 4];
        self.stream.read_exact(&mut rest).await.unwrap();
        let doff = rest[0] as usize * 4;
        (rest[1], rest[doff - 4..].to_vec())
    }

    /// The next performative (heartbeats skipped), with a transfer's payload dropped.
    pub async fn recv(&mut self) -> Performative {
        self.recv_with_payload().await.0
    }

    pub async fn recv_with_payload(&mut self) -> (Performative, Vec<u8>) {
        loop {
            let (_, body) = self.read_raw().await;
            if body.is_empty() {
                continue;
            }
            let mut buf = bytes::Bytes::from(body);
            let p: Performative = serde_amqp::from_reader((&mut buf).reader()).unwrap();
            return (p, buf.to_vec());
        }
    }

    /// Attaches a receiving link on handle 0 from `address` and grants `credit`.
    pub async fn attach_receiver(
        &mut self,
        address: &str,
        mode: ReceiverSettleMode,
        credit: u32,
    ) -> Attach {
        self.send(
            0,
            &Attach {
                name: "raw-receiver".into(),
                handle: Handle(0),
                role: Role::Receiver,
                snd_settle_mode: SenderSettleMode::Unsettled,
                rcv_settle_mode: mode,
                source: Some(Box::new(Source::builder().address(address).build())),
                target: Some(Box::new(Target::builder().address("raw").build().into())),
                unsettled: None,
                incomplete_unsettled: false,
                initial_delivery_count: None,
                max_message_size: None,
                offered_capabilities: None,
                desired_capabilities: None,
                properties: None,
            },
        )
        .await;
        let Performative::Attach(reply) = self.recv().await else {
            panic!("expected attach")
        };
        self.send(
            0,
            &Flow {
                next_incoming_id: Some(0),
                incoming_window: 1000,
                next_outgoing_id: 0,
                outgoing_window: 1000,
                handle: Some(Handle(0)),
                delivery_count: Some(0),
                link_credit: Some(credit),
                available: None,
                drain: false,
                echo: false,
                properties: None,
            },
        )
        .await;
        reply
    }

    /// Sends a disposition for one delivery.
    pub async fn dispose(
        &mut self,
        delivery_id: u32,
        settled: bool,
        state: fe2o3_amqp::types::messaging::DeliveryState,
    ) {
        self.send(
            0,
            &Disposition {
                role: Role::Receiver,
                first: delivery_id,
                last: None,
                settled,
                state: Some(state),
                batchable: false,
            },
        )
        .await;
    }
}
