//! Credentials for an external stack: from the environment or a file, never from a
//! topology, and masked wherever hab writes text.
//!
//! | what | environment variable | file key |
//! |---|---|---|
//! | RabbitMQ user / password | `HAB_BROKER_USER` / `HAB_BROKER_PASSWORD` | `[broker] user`, `password` |
//! | Redis ACL user / password | `HAB_BACKEND_USER` / `HAB_BACKEND_PASSWORD` | `[backend] user`, `password` |
//! | Sentinel password | `HAB_SENTINEL_PASSWORD` | `[sentinel] password` |
//! | RabbitMQ management API user / password (default: the broker's) | `HAB_MANAGEMENT_USER` / `HAB_MANAGEMENT_PASSWORD` | `[management] user`, `password` |
//!
//! The file is the topology's `external.credentials` (TOML, relative to the topology
//! file); an environment variable overrides the file's value. Topology URLs carry no
//! password (validation refuses one); hab adds the credentials only where it connects
//! ([`amqp_url`], [`redis_url`]), so every URL hab logs, stores in `run.json` or passes
//! on a command line is the one from the topology. Worker processes get them through the
//! environment ([`Credentials::child_env`]), never through their arguments. [`mask`] replaces every
//! installed secret in a text by `***`: client errors recorded in events and the output
//! of fault commands go through it before they are written.

use std::path::Path;
use std::sync::{PoisonError, RwLock};

use serde::Deserialize;

/// The credentials of one external stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// RabbitMQ user (with `broker_password`).
    pub broker_user: Option<String>,
    /// RabbitMQ password.
    pub broker_password: Option<String>,
    /// Redis ACL user (Redis 6+); without it `AUTH <password>` uses the default user.
    pub backend_user: Option<String>,
    /// Redis password.
    pub backend_password: Option<String>,
    /// Sentinel password (`requirepass` of the Sentinels).
    pub sentinel_password: Option<String>,
    /// RabbitMQ management API user (absent: the broker's).
    pub management_user: Option<String>,
    /// RabbitMQ management API password (absent: the broker's).
    pub management_password: Option<String>,
}

/// Environment variables and the credentials each fills, in [`Credentials`] field order.
pub const ENV_VARS: [&str; 7] = [
    "HAB_BROKER_USER",
    "HAB_BROKER_PASSWORD",
    "HAB_BACKEND_USER",
    "HAB_BACKEND_PASSWORD",
    "HAB_SENTINEL_PASSWORD",
    "HAB_MANAGEMENT_USER",
    "HAB_MANAGEMENT_PASSWORD",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    broker: UserPassword,
    #[serde(default)]
    backend: UserPassword,
    #[serde(default)]
    sentinel: PasswordOnly,
    #[serde(default)]
    management: UserPassword,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPassword {
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordOnly {
    password: Option<String>,
}

impl Credentials {
    /// Reads `file` (if any), then lets the environment override it. The error names the
    /// file and never repeats its contents.
    pub fn load(file: Option<&Path>) -> Result<Credentials, String> {
        let mut c = match file {
            None => Credentials::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read credentials file {}: {e}", path.display()))?;
                let f: File = toml::from_str(&text).map_err(|e| {
                    // toml's message quotes the offending line, which may hold a secret.
                    let line = e
                        .span()
                        .map(|s| text[..s.start].matches('\n').count() + 1)
                        .unwrap_or(0);
                    format!(
                        "credentials file {} line {line}: not valid (allowed: [broker] user, password; [backend] user, password; [sentinel] password; [management] user, password)",
                        path.display()
                    )
                })?;
                Credentials {
                    broker_user: f.broker.user,
                    broker_password: f.broker.password,
                    backend_user: f.backend.user,
                    backend_password: f.backend.password,
                    sentinel_password: f.sentinel.password,
                    management_user: f.management.user,
                    management_password: f.management.password,
                }
            }
        };
        c.override_from(|k| std::env::var(k).ok());
        Ok(c)
    }

    fn override_from(&mut self, get: impl Fn(&str) -> Option<String>) {
        let fields = [
            &mut self.broker_user,
            &mut self.broker_password,
            &mut self.backend_user,
            &mut self.backend_password,
            &mut self.sentinel_password,
            &mut self.management_user,
            &mut self.management_password,
        ];
        for (field, var) in fields.into_iter().zip(ENV_VARS) {
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                *field = Some(v);
            }
        }
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        [
            &self.broker_password,
            &self.backend_password,
            &self.sentinel_password,
            &self.management_password,
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    }

    /// `url` with the broker's user and password (when set).
    pub fn amqp_url(&self, url: &str) -> String {
        with_userinfo(
            url,
            self.broker_user.as_deref(),
            self.broker_password.as_deref(),
        )
    }

    /// `url` with the Redis user and password (when set).
    pub fn redis_url(&self, url: &str) -> String {
        with_userinfo(
            url,
            self.backend_user.as_deref(),
            self.backend_password.as_deref(),
        )
    }

    /// `text` with every secret replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            out = out.replace(s, "***");
            // URLs carry it percent-encoded.
            let encoded = percent_encode(s);
            if encoded != s {
                out = out.replace(&encoded, "***");
            }
        }
        out
    }

    /// The environment a worker process needs to reach the same stack.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        [
            &self.broker_user,
            &self.broker_password,
            &self.backend_user,
            &self.backend_password,
            &self.sentinel_password,
            &self.management_user,
            &self.management_password,
        ]
        .into_iter()
        .zip(ENV_VARS)
        .filter_map(|(v, k)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

static INSTALLED: RwLock<Option<Credentials>> = RwLock::new(None);

/// Makes `c` the credentials of this process: [`amqp_url`], [`redis_url`] and [`mask`]
/// use them from now on.
pub fn install(c: Credentials) {
    *INSTALLED.write().unwrap_or_else(PoisonError::into_inner) = Some(c);
}

/// The installed credentials, or the environment's when none were installed (a worker
/// process started by a run).
pub fn current() -> Credentials {
    if let Some(c) = INSTALLED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        return c;
    }
    let mut c = Credentials::default();
    c.override_from(|k| std::env::var(k).ok());
    c
}

/// `url` with the installed broker credentials.
pub fn amqp_url(url: &str) -> String {
    current().amqp_url(url)
}

/// `url` with the installed Redis credentials.
pub fn redis_url(url: &str) -> String {
    current().redis_url(url)
}

/// `text` with every installed secret masked.
pub fn mask(text: &str) -> String {
    current().mask(text)
}

/// Sets user and password in `url` (left unchanged when it does not parse or neither
/// is set; an existing user is kept unless `user` is given).
fn with_userinfo(url: &str, user: Option<&str>, password: Option<&str>) -> String {
    if user.is_none() && password.is_none() {
        return url.to_string();
    }
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    if let Some(user) = user
        && u.set_username(user).is_err()
    {
        return url.to_string();
    }
    if u.set_password(password).is_err() {
        return url.to_string();
    }
    u.to_string()
}

fn percent_encode(s: &str) -> String {
    let mut u = url::Url::parse("amqp://h/").expect("static URL");
    let _ = u.set_password(Some(s));
    u.password().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            broker_user: Some("hab".into()),
            broker_password: Some("p@ss word".into()),
            backend_user: None,
            backend_password: Some("r3dis".into()),
            sentinel_password: None,
            management_user: None,
            management_password: None,
        }
    }

    #[test]
    fn urls_get_credentials_only_where_set() {
        let c = creds();
        assert_eq!(
            c.amqp_url("amqp://10.0.0.1:5672/%2f"),
            "amqp://hab:p%40ss%20word@10.0.0.1:5672/%2f"
        );
        assert_eq!(
            c.redis_url("redis://10.0.0.2:6379/0"),
            "redis://:r3dis@10.0.0.2:6379/0"
        );
        let none = Credentials::default();
        assert_eq!(none.amqp_url("amqp://h:1/%2f"), "amqp://h:1/%2f");
    }

    #[test]
    fn mask_hides_plain_and_percent_encoded_secrets() {
        let c = creds();
        let url = c.amqp_url("amqp://10.0.0.1:5672/%2f");
        let masked = c.mask(&format!(
            "connect {url} failed; auth p@ss word, redis r3dis"
        ));
        assert!(
            !masked.contains("p@ss") && !masked.contains("p%40ss") && !masked.contains("r3dis"),
            "{masked}"
        );
        assert_eq!(masked.matches("***").count(), 3, "{masked}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.toml");
        std::fs::write(
            &path,
            "[broker]\nuser = \"a\"\npassword = \"b\"\n[sentinel]\npassword = \"s\"\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let f: File = toml::from_str(&text).unwrap();
        let mut c = Credentials {
            broker_user: f.broker.user,
            broker_password: f.broker.password,
            sentinel_password: f.sentinel.password,
            ..Credentials::default()
        };
        c.override_from(|k| (k == "HAB_BROKER_PASSWORD").then(|| "env".to_string()));
        assert_eq!(c.broker_user.as_deref(), Some("a"));
        assert_eq!(c.broker_password.as_deref(), Some("env"));
        assert_eq!(c.sentinel_password.as_deref(), Some("s"));
        assert_eq!(
            c.child_env(),
            vec![
                ("HAB_BROKER_USER", "a".to_string()),
                ("HAB_BROKER_PASSWORD", "env".to_string()),
                ("HAB_SENTINEL_PASSWORD", "s".to_string())
            ]
        );
    }

    #[test]
    fn a_bad_file_is_named_without_repeating_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.toml");
        std::fs::write(&path, "[broker]\npasword = \"topsecret\"\n").unwrap();
        let e = Credentials::load(Some(&path)).unwrap_err();
        assert!(e.contains("creds.toml line 2"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
        let missing = Credentials::load(Some(&dir.path().join("nope.toml"))).unwrap_err();
        assert!(missing.contains("nope.toml"), "{missing}");
    }
}
