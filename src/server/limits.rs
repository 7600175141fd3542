//! The size limits of an agent server and how they fit together (see the README's "Size
//! limits"): requests up to `max_message_bytes`, stored tasks up to `max_task_bytes`, replies
//! up to `max_task_bytes` + [`REPLY_HEADROOM_BYTES`], which stays within what clients decode
//! ([`MAX_REPLY_BYTES`]), so that everything accepted can be read back.

use super::{ServeConfig, ServeError};

/// Default [`ServeConfig::max_message_bytes`]: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default [`ServeConfig::max_task_bytes`]: 16 MiB, four messages of the default maximum size
/// (a task holds its message in the history and, for an agent like `echo`, again in an
/// artifact).
pub const DEFAULT_MAX_TASK_BYTES: usize = 16 * 1024 * 1024;
/// Room above [`ServeConfig::max_task_bytes`] in every reply for the envelope around a task
/// (a `ListTasks` page's framing and token, a stream event's wrapper) and the runtime's own
/// small status events: 64 KiB.
pub const REPLY_HEADROOM_BYTES: usize = 64 * 1024;
pub use crate::client::MAX_REPLY_BYTES;

impl ServeConfig {
    /// Checks the limits: `0 < max_message_bytes <= max_task_bytes <=` [`MAX_REPLY_BYTES`] −
    /// [`REPLY_HEADROOM_BYTES`], `max_parts_bytes > 0`, and the connection limits.
    pub(super) fn validate(&self) -> Result<(), ServeError> {
        self.connections.validate().map_err(ServeError::Config)?;
        let most = MAX_REPLY_BYTES - REPLY_HEADROOM_BYTES;
        if self.max_message_bytes == 0 || self.max_message_bytes > self.max_task_bytes {
            return Err(ServeError::Config(format!(
                "max_message_bytes ({}) must be between 1 and max_task_bytes ({})",
                self.max_message_bytes, self.max_task_bytes
            )));
        }
        if self.max_parts_bytes == 0 {
            return Err(ServeError::Config(
                "max_parts_bytes must be at least 1".into(),
            ));
        }
        if self.max_task_bytes > most {
            return Err(ServeError::Config(format!(
                "max_task_bytes ({}) must be at most {most}, what clients decode",
                self.max_task_bytes
            )));
        }
        if self.lease_ttl < std::time::Duration::from_millis(100) {
            return Err(ServeError::Config(format!(
                "lease_ttl ({:?}) must be at least 100 ms",
                self.lease_ttl
            )));
        }
        if self.disconnect_grace > super::MAX_DISCONNECT_GRACE {
            return Err(ServeError::Config(format!(
                "disconnect_grace ({:?}) must be at most {:?}",
                self.disconnect_grace,
                super::MAX_DISCONNECT_GRACE
            )));
        }
        if self.replica_id.trim().is_empty() {
            return Err(ServeError::Config("replica_id must not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_limits_are_refused_with_the_field_named() {
        assert!(ServeConfig::default().validate().is_ok());
        let bad = [
            ServeConfig {
                max_message_bytes: DEFAULT_MAX_TASK_BYTES + 1,
                ..ServeConfig::default()
            },
            ServeConfig {
                max_task_bytes: MAX_REPLY_BYTES,
                ..ServeConfig::default()
            },
            ServeConfig {
                max_parts_bytes: 0,
                ..ServeConfig::default()
            },
        ];
        for (config, field) in
            bad.iter()
                .zip(["max_message_bytes", "max_task_bytes", "max_parts_bytes"])
        {
            let e = config.validate().expect_err(field).to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
