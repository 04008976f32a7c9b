//! Client library (placeholder until written).
