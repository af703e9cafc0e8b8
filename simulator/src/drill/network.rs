//! Connections an attacker holds open from an instance, with EC2's connection tracking (EC2
//! User Guide, "Security group connection tracking"): a security-group change does not cut a
//! tracked connection that is already open; a flow allowed by rules that allow all traffic in
//! both directions is untracked, and an untracked flow stops as soon as the interface's groups
//! no longer allow it. AWS's isolation runbooks move an interface to an allow-all group first
//! for exactly this reason (`../shared/AWS-GUIDANCE.md`).
//!
//! The simulator keeps rule *counts* per group, not rules: a group allows all traffic when it
//! has the two rules each way (IPv4 and IPv6) that `Ec2::allow_all_traffic` adds, and allows
//! the attacker's outbound flow when it has any egress rule (EC2's default allow-all egress).

use serde::Serialize;

/// What an interface's groups allow, summed over its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Some group allows all traffic in and out (flows are untracked).
    pub allow_all: bool,
    /// Some group has an egress rule (a new outbound flow is allowed).
    pub egress: bool,
}

impl Rules {
    /// From the groups' (ingress, egress) rule counts.
    pub fn of(groups: &[(usize, usize)]) -> Rules {
        Rules {
            allow_all: groups.iter().any(|(i, e)| *i >= 2 && *e >= 2),
            egress: groups.iter().any(|(_, e)| *e > 0),
        }
    }
}

/// One connection from an instance's network interface.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    /// Account of the instance.
    pub account: String,
    /// Region.
    pub region: String,
    /// Instance id.
    pub instance: String,
    /// The interface it leaves through.
    pub eni: String,
    /// Destination `address:port`.
    pub to: String,
    /// Opened at (epoch ms).
    pub opened_ms: u64,
    /// Tracked by the security groups' connection tracking.
    pub tracked: bool,
    /// Cut at (epoch ms), if cut.
    pub cut_ms: Option<u64>,
}

/// Every connection the attacker opened.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// In opening order.
    pub connections: Vec<Connection>,
}

impl Network {
    /// The open connection from `instance` to `to`, if any.
    pub fn open_one(&self, instance: &str, to: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|c| c.instance == instance && c.to == to && c.cut_ms.is_none())
    }

    /// The interfaces (account, region, eni) with an open connection.
    pub fn watched(&self) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = self
            .connections
            .iter()
            .filter(|c| c.cut_ms.is_none())
            .map(|c| (c.account.clone(), c.region.clone(), c.eni.clone()))
            .collect();
        v.dedup();
        v
    }

    /// The interface's groups became `rules` at `now_ms`: untracked flows the rules no longer
    /// allow are cut; allow-all rules make open flows untracked; tracked flows stay open.
    pub fn update(&mut self, eni: &str, rules: Rules, now_ms: u64) {
        for c in self
            .connections
            .iter_mut()
            .filter(|c| c.eni == eni && c.cut_ms.is_none())
        {
            if rules.allow_all {
                c.tracked = false;
            } else if !c.tracked && !rules.egress {
                c.cut_ms = Some(now_ms);
            } else if !c.tracked {
                // Allowed again by a narrower rule: tracked from here on.
                c.tracked = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network {
            connections: vec![Connection {
                account: "1".into(),
                region: "r".into(),
                instance: "i-1".into(),
                eni: "eni-1".into(),
                to: "198.51.100.7:443".into(),
                opened_ms: 0,
                tracked: true,
                cut_ms: None,
            }],
        }
    }

    const ISOLATION: Rules = Rules {
        allow_all: false,
        egress: false,
    };

    #[test]
    fn a_tracked_connection_survives_a_move_to_a_group_with_no_rules() {
        let mut n = net();
        n.update("eni-1", ISOLATION, 10);
        assert!(n.open_one("i-1", "198.51.100.7:443").is_some());
    }

    #[test]
    fn through_an_allow_all_group_first_the_connection_is_cut() {
        let mut n = net();
        n.update("eni-1", Rules::of(&[(2, 2)]), 10);
        assert!(!n.connections[0].tracked);
        n.update("eni-1", ISOLATION, 20);
        assert_eq!(n.connections[0].cut_ms, Some(20));
        assert!(n.open_one("i-1", "198.51.100.7:443").is_none());
    }

    #[test]
    fn default_rules_neither_allow_all_nor_block_egress() {
        assert_eq!(
            Rules::of(&[(1, 1)]),
            Rules {
                allow_all: false,
                egress: true
            }
        );
        assert_eq!(Rules::of(&[(0, 0)]), ISOLATION);
    }
}
