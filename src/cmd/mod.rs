//! Commands (layer 6): orchestration of one `hab` subcommand each, built from the engines,
//! metrics, the record and its presentation. Only [`crate::cli`] imports this module;
//! progress goes through a [`crate::progress::Reporter`], never `eprintln!`.

pub mod calibrate;
pub mod catalog;
pub mod celery_env;
pub mod check;
pub mod compare;
pub mod doctor;
pub mod merge;
pub mod run;
pub mod sweep;
pub mod up;
