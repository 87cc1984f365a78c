use super::*;

/// An error that, like many, prints its source and also returns it.
#[derive(Debug, thiserror::Error)]
#[error("could not start `x`: {source}")]
struct Loud {
    source: std::io::Error,
}

#[test]
fn error_message_says_every_cause_once() {
    let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
    let e = anyhow::Error::from(ConfigError::Read {
        kind: "topology",
        path: "ha.toml".into(),
        source: missing(),
    });
    let os = missing().to_string();
    assert_eq!(
        error_message(&e),
        format!("cannot read topology file ha.toml: {os}")
    );
    let e = anyhow::Error::from(Loud { source: missing() }).context("worker w1");
    assert_eq!(
        error_message(&e),
        format!("worker w1: could not start `x`: {os}")
    );
    assert_eq!(error_message(&e).matches(&os).count(), 1);
}
