//! MQTT topic names, built and parsed here and nowhere else.
//!
//! Layout: `<prefix>/v1/<site>/<agent>/<kind>` with kind one of `punches`, `acks`, `status`, `commands`.
//! Agents publish `punches` and `status` and subscribe to their own `acks` and `commands`; central-api replicas
//! subscribe to `$share/<group>/<prefix>/v1/+/+/punches` (and `status`) so the broker splits the load between them.

use std::fmt;
use std::str::FromStr;

use crate::ids::{AgentId, IdError, SiteId};

/// The topic layout version, part of every topic.
pub const TOPIC_VERSION: &str = "v1";

/// What a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    Punches,
    Acks,
    Status,
    Commands,
}

impl TopicKind {
    pub const ALL: [TopicKind; 4] = [Self::Punches, Self::Acks, Self::Status, Self::Commands];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Punches => "punches",
            Self::Acks => "acks",
            Self::Status => "status",
            Self::Commands => "commands",
        }
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TopicKind {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, TopicError> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| TopicError::UnknownKind(s.to_owned()))
    }
}

/// Why a prefix, group or topic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic prefix {0:?} is invalid: it must be non-empty levels without '+', '#', NUL or a leading '$'")]
    BadPrefix(String),
    #[error("shared subscription group {0:?} is invalid: use letters, digits, '-' and '_'")]
    BadGroup(String),
    #[error("topic {0:?} is not under this prefix and version")]
    Foreign(String),
    #[error("topic {0:?} does not have the shape <prefix>/v1/<site>/<agent>/<kind>")]
    Shape(String),
    #[error("unknown topic kind {0:?}")]
    UnknownKind(String),
    #[error("topic names an invalid id: {0}")]
    Id(#[from] IdError),
}

/// A topic parsed back into who it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTopic {
    pub site: SiteId,
    pub agent: AgentId,
    pub kind: TopicKind,
}

/// The topic layout under one configured prefix (for example `attendance` or `acme/attendance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// # Errors
    /// [`TopicError::BadPrefix`] when the prefix is empty, has empty levels, wildcards, NUL or starts with `$`.
    pub fn new(prefix: &str) -> Result<Self, TopicError> {
        let ok = !prefix.is_empty()
            && !prefix.starts_with('$')
            && prefix.split('/').all(|level| !level.is_empty() && !level.contains(['+', '#', '\0']));
        if ok {
            Ok(Self { prefix: prefix.to_owned() })
        } else {
            Err(TopicError::BadPrefix(prefix.to_owned()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The topic an agent publishes to or listens on.
    pub fn topic(&self, kind: TopicKind, site: &SiteId, agent: &AgentId) -> String {
        format!("{}/{TOPIC_VERSION}/{site}/{agent}/{kind}", self.prefix)
    }

    /// A filter matching `kind` for every site and agent.
    pub fn all(&self, kind: TopicKind) -> String {
        format!("{}/{TOPIC_VERSION}/+/+/{kind}", self.prefix)
    }

    /// The shared-subscription filter central-api replicas in `group` use for `kind`.
    ///
    /// # Errors
    /// [`TopicError::BadGroup`] when the group is not a plain name.
    pub fn shared(&self, group: &str, kind: TopicKind) -> Result<String, TopicError> {
        if group.is_empty() || !group.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(TopicError::BadGroup(group.to_owned()));
        }
        Ok(format!("$share/{group}/{}", self.all(kind)))
    }

    /// Parses a concrete topic (as received in a PUBLISH) back into site, agent and kind.
    ///
    /// # Errors
    /// [`TopicError::Foreign`] for a topic under another prefix or version, [`TopicError::Shape`] for the wrong
    /// number of levels, [`TopicError::UnknownKind`] and [`TopicError::Id`] for bad parts.
    pub fn parse(&self, topic: &str) -> Result<AgentTopic, TopicError> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_prefix(TOPIC_VERSION))
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| TopicError::Foreign(topic.to_owned()))?;
        let mut levels = rest.split('/');
        let (Some(site), Some(agent), Some(kind), None) = (levels.next(), levels.next(), levels.next(), levels.next())
        else {
            return Err(TopicError::Shape(topic.to_owned()));
        };
        Ok(AgentTopic { site: site.parse()?, agent: agent.parse()?, kind: kind.parse()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (SiteId, AgentId) {
        ("plant-1".parse().unwrap(), "gate-pc".parse().unwrap())
    }

    #[test]
    fn builds_and_parses_every_kind() {
        let topics = Topics::new("acme/attendance").unwrap();
        let (site, agent) = ids();
        for kind in TopicKind::ALL {
            let topic = topics.topic(kind, &site, &agent);
            assert_eq!(topic, format!("acme/attendance/v1/plant-1/gate-pc/{kind}"));
            assert_eq!(topics.parse(&topic).unwrap(), AgentTopic { site: site.clone(), agent: agent.clone(), kind });
        }
    }

    #[test]
    fn shared_subscription_filter() {
        let topics = Topics::new("att").unwrap();
        assert_eq!(topics.shared("central", TopicKind::Punches).unwrap(), "$share/central/att/v1/+/+/punches");
        assert!(matches!(topics.shared("a/b", TopicKind::Punches), Err(TopicError::BadGroup(_))));
    }

    #[test]
    fn refuses_bad_prefixes_and_topics() {
        for bad in ["", "/a", "a/", "a//b", "a/+", "#", "$SYS"] {
            assert!(Topics::new(bad).is_err(), "{bad:?}");
        }
        let topics = Topics::new("att").unwrap();
        assert!(matches!(topics.parse("other/v1/s/a/punches"), Err(TopicError::Foreign(_))));
        assert!(matches!(topics.parse("att/v2/s/a/punches"), Err(TopicError::Foreign(_))));
        assert!(matches!(topics.parse("attx/v1/s/a/punches"), Err(TopicError::Foreign(_))));
        assert!(matches!(topics.parse("att/v1/s/a/punches/x"), Err(TopicError::Shape(_))));
        assert!(matches!(topics.parse("att/v1/s/punches"), Err(TopicError::Shape(_))));
        assert!(matches!(topics.parse("att/v1/s/a/acks2"), Err(TopicError::UnknownKind(_))));
        assert!(matches!(topics.parse("att/v1/s!/a/acks"), Err(TopicError::Id(_))));
    }
}
