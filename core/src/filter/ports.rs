//! Host ports (pkg/scheduler/framework/types.go `HostPortInfo.CheckConflict`): two ports
//! conflict when protocol and port are equal and the IPs overlap, where "" and "0.0.0.0"
//! mean every address. A host port of 0 is no host port.

use crate::model::HostPort;

/// Normalized (ip, protocol, port) triples in use on a node.
#[derive(Debug, Default, Clone)]
pub struct HostPortSet(Vec<(String, String, u16)>);

fn normalize(p: &HostPort) -> (String, String, u16) {
    let ip = if p.host_ip.is_empty() {
        "0.0.0.0"
    } else {
        &p.host_ip
    };
    let proto = if p.protocol.is_empty() {
        "TCP"
    } else {
        &p.protocol
    };
    (ip.to_string(), proto.to_string(), p.port)
}

impl HostPortSet {
    pub fn add(&mut self, ports: &[HostPort]) {
        self.0
            .extend(ports.iter().filter(|p| p.port != 0).map(normalize));
    }

    pub fn conflicts(&self, p: &HostPort) -> bool {
        if p.port == 0 {
            return false;
        }
        let (ip, proto, port) = normalize(p);
        self.0.iter().any(|(uip, uproto, uport)| {
            *uport == port
                && *uproto == proto
                && (ip == "0.0.0.0" || uip == "0.0.0.0" || *uip == ip)
        })
    }
}

/// True when any of the pod's host ports conflicts with one in use.
pub fn ports_conflict(used: &HostPortSet, wanted: &[HostPort]) -> bool {
    wanted.iter().any(|p| used.conflicts(p))
}
