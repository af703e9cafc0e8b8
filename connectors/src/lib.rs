//! cordon's connectors: the real implementations of the engine's cloud and chat traits.
//! The AWS implementation arrives with the AWS connectors issue.
