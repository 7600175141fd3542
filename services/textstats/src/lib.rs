//! textstats (placeholder)
