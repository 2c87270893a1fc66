//! FoundationDB backend (being written).
