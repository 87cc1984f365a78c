//! HAProxy as hab names and reads it. The names of hab's HAProxy backends and servers, as
//! `show stat` reports them: the stack writes them into `haproxy.cfg`, an external
//! topology defaults to them (`external.proxy_broker_backend`,
//! `external.proxy_redis_backend`) and the failover analysis matches HAProxy's events to
//! the faulted node by them. The client of HAProxy's stats socket lives with the stack
//! ([`crate::stack::haproxy::stats`]).

/// Name of the HAProxy backend holding the RabbitMQ nodes (as `show stat` reports it).
pub const BROKER_BACKEND: &str = "broker_nodes";

/// Name of the HAProxy backend holding the Redis data nodes (as `show stat` reports it).
pub const REDIS_BACKEND: &str = "backend_nodes";

/// Prefix of the server names in [`BROKER_BACKEND`]: `rabbit0`, `rabbit1`, …
pub const BROKER_SERVER_PREFIX: &str = "rabbit";

/// Prefix of the server names in [`REDIS_BACKEND`]: `redis0`, `redis1`, …
pub const REDIS_SERVER_PREFIX: &str = "redis";
