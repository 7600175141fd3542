//! keywords (placeholder)
