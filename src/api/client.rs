//! HTTP client of the Configuration API: typed calls, keep-alive, timeouts, retries.
