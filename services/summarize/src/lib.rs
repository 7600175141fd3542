//! summarize (placeholder)
