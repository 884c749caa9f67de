//! The long-running service: triggers (database, files, timer, API) → debounce → one pass at a
//! time; leader election among several agents; systemd notify and watchdog.
