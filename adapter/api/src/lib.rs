//! The adapter's public HTTP contract: request and response types and stable error codes.
