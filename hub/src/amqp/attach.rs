//! Attaching and detaching links: what each attach is (by its address and direction) and who
//! may make it, a device's receiving link registered with the hub's sessions (the newest of a
//! device wins), and what a link gives back when it goes.

use fe2o3_amqp_types::definitions::{AmqpError, Error as AmqpErr, Handle, LinkError, Role};
use fe2o3_amqp_types::performatives::{Attach, Detach};
use tokio::io::AsyncWrite;

use super::connection::Conn;
use super::convert::{self};
use super::session::{amqp_error, link_flow, release_of, Done, Fatal, Link, LinkKind, CREDIT};
use super::Control;
use crate::auth::Access;
use crate::sessions::{DeviceSession, SessionSignal};

impl<W: AsyncWrite + Unpin> Conn<W> {
    /// A peer's attach: answered in kind, then detached with an error if the hub refuses it.
    pub(super) fn on_attach(&mut self, channel: u16, attach: Attach) -> Result<(), Fatal> {
        let handle = attach.handle.0;
        // the peer's sender is the hub's receiver
        let we_receive = attach.role == Role::Sender;
        let address = if we_receive {
            target_address(&attach)
        } else {
            attach.source.as_ref().and_then(|s| s.address.clone())
        }
        .unwrap_or_default();
        let (kind, refusal) = match self.link_kind(&attach, &address, we_receive) {
            Ok(kind) => {
                tracing::debug!(peer = %self.peer, %address, ?kind, "AMQP: link attached");
                (kind, None)
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, %address, error = ?e.description, "AMQP: link refused");
                (LinkKind::Refused, Some(e))
            }
        };
        self.send(channel, &answer(&attach, we_receive, refusal.is_some()));
        let mut link = Link::new(kind);
        if let LinkKind::DeviceReceive { device, owner } = &link.kind {
            link.wake = Some(self.receive_for(device, *owner));
        }
        if let Some(error) = refusal {
            self.detach(channel, handle, error);
        } else if we_receive {
            link.delivery_count = attach.initial_delivery_count.unwrap_or(0);
            link.credit = CREDIT;
        }
        let grant_credit = we_receive && link.kind != LinkKind::Refused;
        let delivery_count = link.delivery_count;
        let session = self.session(channel)?;
        session.links.insert(handle, link);
        if grant_credit {
            let flow = link_flow(session, handle, delivery_count, CREDIT);
            self.send(channel, &flow);
        }
        Ok(())
    }

    /// What a link to or from `address` is, or why the hub refuses it.
    fn link_kind(
        &mut self,
        attach: &Attach,
        address: &str,
        we_receive: bool,
    ) -> Result<LinkKind, AmqpErr> {
        let path = convert::address_path(address).to_ascii_lowercase();
        let refused = |why: &str| amqp_error(AmqpError::UnauthorizedAccess, why);
        if address == "$cbs" {
            return Ok(if we_receive {
                LinkKind::CbsRequests
            } else {
                LinkKind::CbsReplies {
                    address: target_address(attach),
                }
            });
        }
        if we_receive && path == "/messages/devicebound" {
            return if self.authorized(Access::Service) {
                Ok(LinkKind::C2dSend)
            } else {
                Err(refused("sending C2D messages needs a ServiceConnect token (CBS put-token or SASL PLAIN)"))
            };
        }
        if let (false, Some(device)) = (we_receive, convert::device_of_to(address)) {
            if !self.authorized(Access::Device(&device)) && self.certificates.is_some() {
                // no token for the device: its certificate, if it has one
                match self.ctx.authorize_x509(&device, &self.certificates) {
                    Ok(grant) => self.grants.push(grant),
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, %device, error = %e, "AMQP: X.509 authentication refused")
                    }
                }
            }
            return if self.authorized(Access::Device(&device)) {
                let owner = self.ctx.sessions.new_owner();
                Ok(LinkKind::DeviceReceive { device, owner })
            } else {
                Err(refused(&format!("receiving for device '{device}' needs that device's token (CBS put-token or SASL PLAIN) or certificate")))
            };
        }
        if !we_receive && path == "/messages/servicebound/feedback" {
            return if self.authorized(Access::Service) {
                let owner = self.ctx.sessions.new_owner();
                Ok(LinkKind::Feedback { owner })
            } else {
                Err(refused(
                    "reading feedback needs a ServiceConnect token (CBS put-token or SASL PLAIN)",
                ))
            };
        }
        let end = if we_receive { "target" } else { "source" };
        Err(amqp_error(
            AmqpError::NotFound,
            format!("no {end} node at '{address}'"),
        ))
    }

    /// Makes this connection's link of `owner` the device's receiving link (the newest of a
    /// device wins, and the one it replaces is told so), and forwards the device's queue
    /// wake-ups to the connection: the task that does, which the link aborts when it goes.
    fn receive_for(&mut self, device: &str, owner: u64) -> tokio::task::JoinHandle<()> {
        let control = self.control.clone();
        let session = DeviceSession {
            presence: self.ctx.presence_now(owner, self.peer.amqp_transport()),
            notify: Some(Box::new(move |signal| {
                let _ = control.send(Control::Signal(owner, signal));
            })),
            done: None,
        };
        if let Some(mut old) = self.ctx.sessions.replace_amqp(device, session) {
            old.signal(SessionSignal::Replaced);
        }
        let mut changes = self.ctx.store.waker().device(device);
        let (control, device) = (self.control.clone(), device.to_string());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if control.send(Control::Wake(device.clone())).is_err() {
                    break;
                }
            }
        })
    }

    /// The receiving link of `owner` must end: a newer link of its device replaced it, or the
    /// device was deleted. Detached as stolen either way (what IoT Hub's clients expect of a
    /// link taken from them).
    pub(super) fn signalled(&mut self, owner: u64, signal: SessionSignal) {
        let found = self.sessions.iter().find_map(|(ch, s)| {
            s.links.iter().find_map(|(h, l)| match &l.kind {
                LinkKind::DeviceReceive { owner: o, .. } if *o == owner => Some((*ch, *h)),
                _ => None,
            })
        });
        let Some((channel, handle)) = found else {
            return;
        };
        let why = match signal {
            SessionSignal::Replaced => "a new receiving link for this device replaced this one",
            SessionSignal::DeviceDeleted => "the device was deleted",
            // the whole connection ends (its loop sees this signal first)
            SessionSignal::Dropped { .. } => return,
        };
        tracing::info!(peer = %self.peer, reason = why, "AMQP: detaching a device's receiving link");
        let error = amqp_error(LinkError::Stolen, why);
        self.detach(channel, handle, error);
        self.remove_link(channel, handle);
    }

    /// Forgets a link and gives back what it held.
    pub(super) fn remove_link(&mut self, channel: u16, handle: u32) -> Option<LinkKind> {
        let session = self.sessions.get_mut(&channel)?;
        let link = session.links.remove(&handle)?;
        session.unsettled.retain(|_, (h, _)| *h != handle);
        if let Some(release) = release_of(&self.ctx, &link.kind) {
            self.pending.push(Box::pin(async move {
                release.await;
                Done::Nothing
            }));
        }
        Some(link.kind.clone())
    }

    pub(super) fn on_detach(&mut self, channel: u16, detach: Detach) {
        let handle = detach.handle.0;
        if let Some(kind) = self.remove_link(channel, handle) {
            if kind != LinkKind::Refused {
                let reply = Detach {
                    handle: Handle(handle),
                    closed: detach.closed,
                    error: None,
                };
                self.send(channel, &reply);
            }
        }
    }
}

/// The target address of an attach (a `$cbs` receiver's is where its replies go).
fn target_address(attach: &Attach) -> Option<String> {
    attach.target.as_ref().and_then(|t| match t.as_ref() {
        fe2o3_amqp_types::messaging::TargetArchetype::Target(t) => t.address.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

/// The hub's attach in answer to `attach`: its own role, the peer's termini echoed — but a
/// refused link is answered with a null terminus on the hub's side (AMQP 1.0, 2.6.3), so that
/// the client waits for the detach and its error.
fn answer(attach: &Attach, we_receive: bool, refused: bool) -> Attach {
    Attach {
        name: attach.name.clone(),
        handle: attach.handle.clone(),
        role: if we_receive {
            Role::Receiver
        } else {
            Role::Sender
        },
        snd_settle_mode: attach.snd_settle_mode.clone(),
        rcv_settle_mode: attach.rcv_settle_mode.clone(),
        source: if refused && !we_receive {
            None
        } else {
            attach.source.clone()
        },
        target: if refused && we_receive {
            None
        } else {
            attach.target.clone()
        },
        unsettled: None,
        incomplete_unsettled: false,
        initial_delivery_count: if we_receive { None } else { Some(0) },
        // no limit is announced: the hub checks sizes itself and answers with IoT Hub's
        // error, rather than have clients refuse locally
        max_message_size: None,
        offered_capabilities: None,
        desired_capabilities: None,
        properties: None,
    }
}
