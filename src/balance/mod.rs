//! Load balancing: the lock-free node-health table, Maglev, and per-worker flow tables.
