//! # stratum-store
