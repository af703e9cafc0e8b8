//! EventBridge envelopes in, single-finding events and normalized findings out.
