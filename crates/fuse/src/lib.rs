//! FUSE server (placeholder until written).
