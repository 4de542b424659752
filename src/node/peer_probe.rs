//! The Active Director's probe of other nodes' proxy ports: when a node's
//! heartbeats stop, is its proxy still serving? (A dead daemon is not a dead
//! proxy: such a node is held as STALE, docs/heartbeat.md §3.4.)
//!
//! The control plane asks ([`Prober::ask`]) and later picks up the answers
//! ([`Prober::answers`]); the connects happen on short-lived threads, at
//! most [`MAX_IN_FLIGHT`] at once and one per node, so a slow or filtered
//! node never holds up the control loop nor another node's probe.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender, bounded};

/// Probes running at once, at most.
pub const MAX_IN_FLIGHT: usize = 16;

/// One probe result: node id and whether every port accepted a connection.
pub type Answer = (u32, bool);

/// Probes other nodes' proxy ports.
pub struct Prober {
    ports: Vec<u16>,
    timeout: Duration,
    in_flight: Arc<Mutex<HashSet<u32>>>,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
    /// Requests not started because [`MAX_IN_FLIGHT`] were running.
    pub skipped: u64,
}

impl Prober {
    /// A prober of `ports`, each connect bounded by `timeout`.
    pub fn new(ports: Vec<u16>, timeout: Duration) -> Prober {
        let (tx, rx) = bounded(MAX_IN_FLIGHT);
        Prober {
            ports,
            timeout,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            tx,
            rx,
            skipped: 0,
        }
    }

    /// The ports probed (after a reload changed the port redirects).
    pub fn set_ports(&mut self, ports: Vec<u16>) {
        self.ports = ports;
    }

    /// Starts probing node `id` at `ip`, unless its previous probe is still
    /// running or too many are.
    pub fn ask(&mut self, id: u32, ip: Ipv4Addr) {
        {
            let Ok(mut running) = self.in_flight.lock() else {
                return;
            };
            if running.contains(&id) {
                return;
            }
            if running.len() >= MAX_IN_FLIGHT {
                self.skipped += 1;
                return;
            }
            running.insert(id);
        }
        let targets: Vec<SocketAddr> = self
            .ports
            .iter()
            .map(|&p| SocketAddr::from((ip, p)))
            .collect();
        let timeout = self.timeout;
        let tx = self.tx.clone();
        let in_flight = self.in_flight.clone();
        let spawned = thread::Builder::new()
            .name("proxyha-peerprobe".into())
            .spawn(move || {
                let alive = !targets.is_empty()
                    && targets
                        .iter()
                        .all(|t| TcpStream::connect_timeout(t, timeout).is_ok());
                // The channel holds MAX_IN_FLIGHT answers and at most that
                // many probes run, so this never blocks for long.
                let _ = tx.send_timeout((id, alive), Duration::from_secs(1));
                if let Ok(mut running) = in_flight.lock() {
                    running.remove(&id);
                }
            });
        if spawned.is_err()
            && let Ok(mut running) = self.in_flight.lock()
        {
            running.remove(&id);
            self.skipped += 1;
        }
    }

    /// The answers that arrived since the last call.
    pub fn answers(&self) -> impl Iterator<Item = Answer> + '_ {
        self.rx.try_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn wait_answer(p: &Prober) -> Answer {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(a) = p.answers().next() {
                return a;
            }
            assert!(Instant::now() < until, "no probe answer within 5 s");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_listening_port_is_alive_a_closed_one_is_not() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap().port();
        // A port that was bound and released: nothing listens there now.
        let closed = {
            let t = TcpListener::bind("127.0.0.1:0").unwrap();
            t.local_addr().unwrap().port()
        };
        let mut p = Prober::new(vec![open], Duration::from_millis(500));
        p.ask(7, Ipv4Addr::LOCALHOST);
        assert_eq!(wait_answer(&p), (7, true));
        p.set_ports(vec![open, closed]);
        p.ask(8, Ipv4Addr::LOCALHOST);
        assert_eq!(wait_answer(&p), (8, false), "every port must answer");
        p.set_ports(vec![]);
        p.ask(9, Ipv4Addr::LOCALHOST);
        assert_eq!(wait_answer(&p), (9, false), "no port to probe is not alive");
    }
}
