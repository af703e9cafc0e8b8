//! Unit tests for `matcher.rs`.

use super::*;
