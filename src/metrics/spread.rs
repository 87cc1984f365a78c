//! The spread of a figure over repeated measurements, now in [`super::stats`] with the one
//! median; this path stays for its users.

pub use super::stats::Spread;
