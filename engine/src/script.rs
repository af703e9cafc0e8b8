//! The Rhai sandbox: one constructor with every limit; expressions compiled once.
