//! Unit tests for `compile.rs`.

use super::*;
