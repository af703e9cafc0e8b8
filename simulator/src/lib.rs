//! A simulated AWS organization implementing the engine's cloud traits.
