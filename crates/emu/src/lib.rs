//! Emulated devices (placeholder until written).
