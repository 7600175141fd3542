//! Authorization: which [`Principal`]s may call which agent (and skill).
//!
//! A [`Policy`] maps agent names to the principals allowed to call them, with optional
//! per-skill lists. It is **deny by default once it exists**: an empty policy allows every call
//! (authorization off); a non-empty one allows a call only when a rule of the called agent (or,
//! for a call naming a skill that has a rule, that skill's rule) matches the caller.
//!
//! The gateway enforces it with the principal it authenticated (API key, JWT); the agent
//! runtime enforces it again ([`layer`]) with the mTLS [`PeerIdentity`](crate::identity::PeerIdentity)
//! and the forwarded end-user principal, so a compromised gateway or a direct call cannot
//! bypass it. Every decision is counted in `switchyard_authz_decisions_total{agent,decision}`
//! (`decision` = `allow`, `deny` or `unauthenticated`) and logged with the principal's kind and
//! name, never a secret.
//!
//! Rules ([`Matcher`]) are strings:
//!
//! | rule | matches |
//! |---|---|
//! | `*` | every authenticated principal |
//! | `api-key:<name>` | the API key named `<name>` |
//! | `jwt:<subject>` | a JWT whose `sub` is `<subject>` |
//! | `scope:<scope>` | a JWT granting `<scope>` (`scope` or `scp` claim) |
//! | `spiffe://<trust-domain>/<path>` | the workload with this SPIFFE ID (mTLS) |
//! | `spiffe:spiffe://<trust-domain>/<path>` | the same, written as the principal is logged |
//!
//! Agents calling agents are principals of kind `spiffe` (the caller's mTLS identity): a rule
//! `spiffe://<trust-domain>/agent/research` in the policy of `keywords` lets the research
//! agent's fan-out call keywords.

pub mod layer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::identity::{Principal, PrincipalKind, SpiffeId};

/// One rule of a [`Policy`]; see the module docs for the string forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `*`: any authenticated principal.
    Any,
    /// `api-key:<name>`.
    ApiKey(String),
    /// `jwt:<subject>`.
    Subject(String),
    /// `scope:<scope>`.
    Scope(String),
    /// `spiffe://…`.
    Spiffe(SpiffeId),
}

/// Why a rule string is not a [`Matcher`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid policy rule {rule:?}: {reason} (use *, api-key:<name>, jwt:<subject>, scope:<scope>, spiffe://<trust-domain>/<path> or spiffe:spiffe://<trust-domain>/<path>)"
)]
pub struct RuleError {
    rule: String,
    reason: String,
}

impl Matcher {
    /// Parses one rule (see the module docs).
    ///
    /// # Errors
    /// [`RuleError`] for an unknown prefix, an empty name or an invalid SPIFFE ID.
    pub fn parse(rule: &str) -> Result<Self, RuleError> {
        let fail = |reason: &str| RuleError {
            rule: rule.chars().take(128).collect(),
            reason: reason.to_owned(),
        };
        let nonempty = |s: &str| {
            if s.is_empty() {
                Err(fail("empty name"))
            } else {
                Ok(s.to_owned())
            }
        };
        if rule == "*" {
            Ok(Self::Any)
        } else if rule.starts_with("spiffe://") {
            SpiffeId::parse(rule)
                .map(Self::Spiffe)
                .map_err(|e| fail(&e.to_string()))
        } else if let Some(id) = rule.strip_prefix("spiffe:") {
            SpiffeId::parse(id)
                .map(Self::Spiffe)
                .map_err(|e| fail(&e.to_string()))
        } else if let Some(name) = rule.strip_prefix("api-key:") {
            nonempty(name).map(Self::ApiKey)
        } else if let Some(sub) = rule.strip_prefix("jwt:") {
            nonempty(sub).map(Self::Subject)
        } else if let Some(scope) = rule.strip_prefix("scope:") {
            nonempty(scope).map(Self::Scope)
        } else {
            Err(fail("unknown kind"))
        }
    }

    /// Whether `principal` matches.
    pub fn matches(&self, principal: &Principal) -> bool {
        match self {
            Self::Any => true,
            Self::ApiKey(n) => principal.kind == PrincipalKind::ApiKey && &principal.name == n,
            Self::Subject(s) => principal.kind == PrincipalKind::Jwt && &principal.name == s,
            Self::Scope(s) => principal.kind == PrincipalKind::Jwt && principal.scopes.contains(s),
            Self::Spiffe(id) => {
                principal.kind == PrincipalKind::Spiffe && principal.name == id.as_str()
            }
        }
    }
}

/// The rules of one agent, as configured (`[up.auth.policy.<agent>]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentPolicyConfig {
    /// Rules allowing calls to the agent.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Rules per skill id: a call naming a skill listed here is decided by its list alone.
    #[serde(default)]
    pub skills: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default)]
struct AgentRules {
    allow: Vec<Matcher>,
    skills: BTreeMap<String, Vec<Matcher>>,
}

/// The authorization policy of the mesh (see the module docs). `Policy::default()` is empty:
/// everything is allowed.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    agents: BTreeMap<String, AgentRules>,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The caller is known but not allowed (403 / PERMISSION_DENIED); the client-safe reason.
    Deny(String),
    /// A policy applies and the caller is anonymous (401 / UNAUTHENTICATED).
    Unauthenticated,
}

impl Decision {
    /// `allow`, `deny` or `unauthenticated`: the metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny(_) => "deny",
            Self::Unauthenticated => "unauthenticated",
        }
    }
}

impl Policy {
    /// Builds a policy from configured rules per agent.
    ///
    /// # Errors
    /// The first [`RuleError`], prefixed with the agent (and skill) it belongs to.
    pub fn from_config(agents: &BTreeMap<String, AgentPolicyConfig>) -> Result<Self, String> {
        let parse = |list: &[String], at: &str| {
            list.iter()
                .map(|r| Matcher::parse(r).map_err(|e| format!("{at}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut out = BTreeMap::new();
        for (agent, config) in agents {
            let allow = parse(&config.allow, &format!("policy of agent {agent:?}"))?;
            let mut skills = BTreeMap::new();
            for (skill, list) in &config.skills {
                let rules = parse(
                    list,
                    &format!("policy of skill {skill:?} of agent {agent:?}"),
                )?;
                skills.insert(skill.clone(), rules);
            }
            out.insert(agent.clone(), AgentRules { allow, skills });
        }
        Ok(Self { agents: out })
    }

    /// Whether any rule exists (authorization on).
    pub fn is_enabled(&self) -> bool {
        !self.agents.is_empty()
    }

    /// Decides whether `principal` (`None`: anonymous) may call `agent`, naming `skill` when the
    /// call names one. Does not record; see [`Policy::check`].
    pub fn decide(
        &self,
        agent: &str,
        skill: Option<&str>,
        principal: Option<&Principal>,
    ) -> Decision {
        if !self.is_enabled() {
            return Decision::Allow;
        }
        let Some(principal) = principal else {
            return Decision::Unauthenticated;
        };
        let Some(rules) = self.agents.get(agent) else {
            return Decision::Deny(format!(
                "{principal} may not call agent {agent:?}: no policy allows it"
            ));
        };
        let (list, what) = match skill.and_then(|s| rules.skills.get(s).map(|l| (l, s))) {
            Some((list, s)) => (list, format!("skill {s:?} of agent {agent:?}")),
            None => (&rules.allow, format!("agent {agent:?}")),
        };
        if list.iter().any(|m| m.matches(principal)) {
            Decision::Allow
        } else {
            Decision::Deny(format!("{principal} may not call {what}"))
        }
    }

    /// [`decide`](Self::decide), then counts the decision in
    /// `switchyard_authz_decisions_total{agent,decision}` and logs it (`at`: which enforcement
    /// point, e.g. `gateway` or `agent`).
    pub fn check(
        &self,
        at: &'static str,
        agent: &str,
        skill: Option<&str>,
        principal: Option<&Principal>,
    ) -> Decision {
        let decision = self.decide(agent, skill, principal);
        if self.is_enabled() {
            record(at, agent, principal, &decision);
        }
        decision
    }
}

/// Counts and logs one decision (principal by kind and name only).
pub fn record(at: &'static str, agent: &str, principal: Option<&Principal>, decision: &Decision) {
    metrics::counter!(
        "switchyard_authz_decisions_total",
        "agent" => agent.to_owned(),
        "decision" => decision.as_str(),
    )
    .increment(1);
    let who = principal.map_or_else(|| "anonymous".to_owned(), ToString::to_string);
    match decision {
        Decision::Allow => tracing::debug!(at, agent, principal = %who, "authz allow"),
        Decision::Deny(_) | Decision::Unauthenticated => {
            tracing::info!(at, agent, principal = %who, decision = decision.as_str(), "authz refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(kind: PrincipalKind, name: &str, scopes: &[&str]) -> Principal {
        Principal {
            kind,
            name: name.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// One agent's rules: name, `allow`, and per-skill lists.
    type AgentRules<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a [&'a str])]);

    fn policy(rules: &[AgentRules<'_>]) -> Policy {
        let agents = rules
            .iter()
            .map(|(agent, allow, skills)| {
                (
                    (*agent).to_owned(),
                    AgentPolicyConfig {
                        allow: allow.iter().map(|s| (*s).to_owned()).collect(),
                        skills: skills
                            .iter()
                            .map(|(s, l)| {
                                ((*s).to_owned(), l.iter().map(|r| (*r).to_owned()).collect())
                            })
                            .collect(),
                    },
                )
            })
            .collect();
        Policy::from_config(&agents).expect("valid")
    }

    #[test]
    fn an_empty_policy_allows_everything_and_a_present_one_denies_by_default() {
        let alice = principal(PrincipalKind::Jwt, "alice", &["read"]);
        assert_eq!(Policy::default().decide("a", None, None), Decision::Allow);
        let p = policy(&[("echo", &["jwt:alice"], &[])]);
        assert_eq!(p.decide("echo", None, Some(&alice)), Decision::Allow);
        assert_eq!(p.decide("echo", None, None), Decision::Unauthenticated);
        assert!(matches!(
            p.decide("other", None, Some(&alice)),
            Decision::Deny(m) if m.contains("jwt:alice") && m.contains("other")
        ));
        let bob = principal(PrincipalKind::Jwt, "bob", &[]);
        assert!(matches!(
            p.decide("echo", None, Some(&bob)),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn rules_match_by_kind_scope_and_spiffe_id() {
        let p = policy(&[
            (
                "kw",
                &[
                    "api-key:ci",
                    "scope:agents.call",
                    "spiffe://td/agent/research",
                ],
                &[("secret", &["jwt:root"])],
            ),
            ("any", &["*"], &[]),
            ("logged-form", &["spiffe:spiffe://td/agent/research"], &[]),
        ]);
        let key = principal(PrincipalKind::ApiKey, "ci", &[]);
        let same_name_jwt = principal(PrincipalKind::Jwt, "ci", &[]);
        let scoped = principal(PrincipalKind::Jwt, "x", &["agents.call"]);
        let research = principal(PrincipalKind::Spiffe, "spiffe://td/agent/research", &[]);
        let other = principal(PrincipalKind::Spiffe, "spiffe://td/agent/other", &[]);
        for ok in [&key, &scoped, &research] {
            assert_eq!(p.decide("kw", None, Some(ok)), Decision::Allow, "{ok}");
            assert_eq!(p.decide("kw", Some("unlisted"), Some(ok)), Decision::Allow);
            assert!(matches!(
                p.decide("kw", Some("secret"), Some(ok)),
                Decision::Deny(_)
            ));
        }
        for no in [&same_name_jwt, &other] {
            assert!(
                matches!(p.decide("kw", None, Some(no)), Decision::Deny(_)),
                "{no}"
            );
        }
        let root = principal(PrincipalKind::Jwt, "root", &[]);
        assert_eq!(p.decide("kw", Some("secret"), Some(&root)), Decision::Allow);
        assert_eq!(p.decide("any", None, Some(&other)), Decision::Allow);
        // A rule may be written as the principal is logged (`spiffe:<id>`).
        assert_eq!(
            p.decide("logged-form", None, Some(&research)),
            Decision::Allow
        );
        assert!(matches!(
            p.decide("logged-form", None, Some(&other)),
            Decision::Deny(m) if m.starts_with("spiffe:spiffe://td/agent/other may not call")
        ));
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in [
            "",
            "jwt:",
            "user:x",
            "spiffe://BAD/x",
            "api-key:",
            "spiffe:",
            "spiffe:td/x",
        ] {
            let e = Matcher::parse(bad).unwrap_err().to_string();
            assert!(e.contains("invalid policy rule"), "{e}");
        }
        let mut agents = BTreeMap::new();
        agents.insert(
            "echo".to_owned(),
            AgentPolicyConfig {
                allow: vec!["nobody".into()],
                skills: BTreeMap::new(),
            },
        );
        let e = Policy::from_config(&agents).unwrap_err();
        assert!(e.contains("agent \"echo\"") && e.contains("nobody"), "{e}");
    }
}
