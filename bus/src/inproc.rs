//! The in-process bus: the embedded default of `switchyard up`. Nothing leaves the process and
//! nothing survives it; groups, competing consumers and redelivery behave as on a broker (a
//! delivery dropped without an ack — its consumer task was aborted — is handed out again).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc};

use crate::{
    bus::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, Subscription},
    envelope::Envelope,
};

const T: &str = "inproc";

/// The in-process bus. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct InProcessBus {
    state: Arc<Mutex<HashMap<String, Address>>>,
}

#[derive(Debug, Default)]
struct Address {
    groups: HashMap<String, Arc<Group>>,
    subscribers: Vec<mpsc::UnboundedSender<Envelope>>,
}

#[derive(Debug, Default)]
struct Group {
    queue: Mutex<VecDeque<(Envelope, bool)>>,
    ready: Notify,
}

impl Group {
    fn push(&self, env: Envelope, redelivered: bool, front: bool) {
        let mut q = self.queue.lock().expect("queue lock");
        if front {
            q.push_front((env, redelivered));
        } else {
            q.push_back((env, redelivered));
        }
        drop(q);
        self.ready.notify_one();
    }
}

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn group(&self, address: &str, group: &str) -> Arc<Group> {
        let mut s = self.state.lock().expect("bus lock");
        s.entry(address.into())
            .or_default()
            .groups
            .entry(group.into())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    fn transport(&self) -> &'static str {
        T
    }

    async fn ensure(&self, address: &str, group: &str, _: ConsumeOptions) -> Result<(), BusError> {
        self.group(address, group);
        Ok(())
    }

    async fn publish(&self, address: &str, envelope: Envelope) -> Result<(), BusError> {
        let mut s = self.state.lock().expect("bus lock");
        let a = s.entry(address.into()).or_default();
        a.subscribers.retain(|tx| tx.send(envelope.clone()).is_ok());
        for g in a.groups.values() {
            g.push(envelope.clone(), false, false);
        }
        Ok(())
    }

    async fn consume(
        &self,
        address: &str,
        group: &str,
        _name: &str,
        _: ConsumeOptions,
    ) -> Result<Box<dyn Consumer>, BusError> {
        Ok(Box::new(InprocConsumer(self.group(address, group))))
    }

    async fn subscribe(&self, address: &str) -> Result<Box<dyn Subscription>, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.state
            .lock()
            .expect("bus lock")
            .entry(address.into())
            .or_default()
            .subscribers
            .push(tx);
        Ok(Box::new(InprocSubscription(rx)))
    }

    async fn lag(&self, address: &str, group: &str) -> Result<Option<u64>, BusError> {
        let s = self.state.lock().expect("bus lock");
        Ok(s.get(address)
            .and_then(|a| a.groups.get(group))
            .map(|g| g.queue.lock().expect("queue lock").len() as u64))
    }

    async fn remove(&self, address: &str, _: &[&str]) -> Result<(), BusError> {
        self.state.lock().expect("bus lock").remove(address);
        Ok(())
    }

    async fn close(&self) {}
}

struct InprocConsumer(Arc<Group>);

#[async_trait]
impl Consumer for InprocConsumer {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let ready = self.0.ready.notified();
            let next = self.0.queue.lock().expect("queue lock").pop_front();
            if let Some((envelope, redelivered)) = next {
                return Ok(Delivery {
                    envelope: envelope.clone(),
                    redelivered,
                    acker: Box::new(InprocAcker {
                        group: self.0.clone(),
                        envelope: Some(envelope),
                    }),
                });
            }
            ready.await;
        }
    }
}

struct InprocAcker {
    group: Arc<Group>,
    envelope: Option<Envelope>,
}

impl Drop for InprocAcker {
    fn drop(&mut self) {
        if let Some(env) = self.envelope.take() {
            self.group.push(env, true, true);
        }
    }
}

#[async_trait]
impl Acker for InprocAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.envelope = None;
        Ok(())
    }

    async fn nack(mut self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        if let Some(env) = self.envelope.take() {
            let group = self.group.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                group.push(env, true, false);
            });
        }
        Ok(())
    }
}

struct InprocSubscription(mpsc::UnboundedReceiver<Envelope>);

#[async_trait]
impl Subscription for InprocSubscription {
    async fn next(&mut self) -> Result<Envelope, BusError> {
        self.0.recv().await.ok_or(BusError::Closed(T))
    }
}
