//! EventBridge event patterns: compile, and match many patterns against one event.
